"""Rules for the environment, after the code's in priority: a cancelled step, rate limits,
auth, a service that answered 5xx, the network, and dependency resolution (after the
network errors that often cause it). rules.py puts the tables in order."""

# ruff: noqa: E501  (patterns and log lines read best unbroken)

from __future__ import annotations

from contexten.analysis.logs.rules_base import Rule, _r
from contexten.analysis.taxonomy import FailureCategory as C

_RERUN = "Re-run the failed jobs; if it keeps happening, look at the service's status."

ENVIRONMENT_RULES: tuple[Rule, ...] = (
    # --- a cancelled step: weaker than the code's causes (rules_code), stronger than the
    # environment ------------------------------------------------------------------------
    _r(
        "gha-canceled",
        C.TIMEOUT,
        r"The operation was cancell?ed",
        "The runner cancelled the running step (a job timeout, or a cancel from outside).",
        "If the job hit timeout-minutes, find what hung; otherwise re-run.",
        pattern=r"^(##\[error\])?The operation was cancell?ed\.?$",
        confidence=0.6,
    ),
    # --- rate limits -----------------------------------------------------------------------
    _r(
        "api-rate-limit",
        C.RATE_LIMIT,
        r"(rate limit exceeded|secondary rate limit|pull rate limit|rate.limited|ratelimit)",
        "An API refused the request because of its rate limit.",
        "Wait for the reset (Retry-After / X-RateLimit-Reset), authenticate, or cache.",
        # "rate-limited" alone names things too ("Rate limiter and rate-limited actions").
        pattern=r"rate limit exceeded|secondary rate limit|pull rate limit|"
        r"\b(been|being|is|are|was|were|got|get|you're|we're) rate.limited\b|"
        r"\brate.limited (by|until|for|on)\b|\brate.limited[.!:]?\s*$",
        confidence=0.95,
    ),
    _r(
        "http-429",
        C.RATE_LIMIT,
        r"((HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?429\b|E429|too many requests)",
        "A server answered 429 Too Many Requests.",
        "Back off and retry after the reset; authenticate or cache to need fewer requests.",
        pattern=r"\b429 Too Many Requests\b|Too Many Requests|\b(HTTP|status|code|error|response)[ :/=]*(code[ :]*)?\(?429\b|\bE429\b",
        confidence=0.9,
    ),
    # --- auth -----------------------------------------------------------------------------
    _r(
        "bad-credentials",
        C.AUTH,
        r"(bad credentials|authentication failed|invalid username or password|could not read username|incorrect username or password|authentication required|unable to authenticate)",
        "A service rejected the credentials.",
        "Check that the secret exists, is passed to this job and has not expired or been revoked.",
        confidence=0.9,
    ),
    _r(
        "permission-denied-remote",
        C.AUTH,
        r"(permission to .* denied|Permission denied \(publickey|access to the resource is denied|Resource not accessible by integration|requested access to the resource is denied)",
        "The token or key lacks permission for the operation.",
        "Grant the permission (workflow `permissions:`, token scopes, deploy key).",
        confidence=0.9,
    ),
    _r(
        "http-401",
        C.AUTH,
        r"((HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?401\b|\b401 Unauthori|E401|unauthori[sz]ed)",
        "A server answered 401 Unauthorized.",
        "Check the token secret: missing, expired, or for the wrong registry.",
        pattern=r"\b401 Unauthori[sz]ed\b|\b(HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?401\b|\bE401\b|^(error|fatal|##\[error\]).*\bunauthori[sz]ed\b",
        confidence=0.85,
    ),
    _r(
        "http-403",
        C.AUTH,
        r"((HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?403\b|\b403 Forbidden|E403|forbidden)",
        "A server answered 403 Forbidden.",
        "Check the token's permissions and scopes.",
        pattern=r"\b403 Forbidden\b|\b(HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?403\b|\bE403\b",
        confidence=0.8,
    ),
    _r(
        "cloud-credentials",
        C.AUTH,
        r"(credentials could not be loaded|security token included in the request is invalid|ExpiredToken|could not load credentials|invalid_grant)",
        "Cloud credentials are missing, invalid or expired.",
        "Check the credentials secrets or the OIDC role trust.",
        confidence=0.9,
    ),
    # --- a service answered 5xx -------------------------------------------------------------
    _r(
        "http-5xx",
        C.INTEGRATION,
        r"((HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?5[0-9][0-9]\b|\b50[0-9] [a-z]|E50[0-9]|internal server error|bad gateway|service unavailable|gateway time-?out)",
        "A service answered with a server error (5xx).",
        _RERUN,
        pattern=r"\b50[0234] (Internal Server Error|Bad Gateway|Service (Temporarily )?Unavailable|Gateway Time-?out)\b"
        r"|\b(HTTP|status|code|error|response|returned)[ :/=]*(code[ :]*)?\(?5\d\d\b|\bE50[0-9]\b"
        r"|\b(Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out)\b",
        confidence=0.85,
    ),
    _r(
        "registry-unavailable",
        C.INTEGRATION,
        r"(server misbehaving|upstream connect error|received unexpected HTTP status: 5|The remote server returned an error: \(5)",
        "A registry or service failed on its side.",
        _RERUN,
        confidence=0.8,
    ),
    # --- network ----------------------------------------------------------------------------
    _r(
        "dns-failure",
        C.NETWORK,
        r"(could not resolve host|temporary failure in name resolution|name or service not known|\bENOTFOUND\b|\bEAI_AGAIN\b|UnknownHostException|no such host|nodename nor servname)",
        "A host name could not be resolved.",
        "Re-run; if it repeats, check the host name.",
        confidence=0.9,
    ),
    _r(
        "connection-reset",
        C.NETWORK,
        r"(ECONNRESET|connection reset|ConnectionResetError|socket hang up|RemoteDisconnected|unexpected eof|early EOF|Connection was reset)",
        "A connection was reset by the other side.",
        "Re-run the job.",
        pattern=r"ECONNRESET|connection reset by peer|SocketException: Connection reset|ConnectionResetError|socket hang up|RemoteDisconnected|unexpected eof|early EOF|Connection was reset",
        confidence=0.85,
    ),
    _r(
        "connection-timeout",
        C.NETWORK,
        r"(ETIMEDOUT|[Rr]ead timed out|[Cc]onnect(ion)? timed out|ConnectTimeout(Error|Exception)|SocketTimeoutException|i/o timeout|TLS handshake timeout|ERR_SOCKET_TIMEOUT)",
        "A network connection timed out.",
        "Re-run the job.",
        case_sensitive=True,
        confidence=0.85,
    ),
    _r(
        "connection-refused",
        C.NETWORK,
        r"(ECONNREFUSED|connection refused|ConnectException|Failed to establish a new connection|network is unreachable|no route to host)",
        "A connection was refused or the network was unreachable.",
        "Re-run; if it repeats, check that the service the job needs is started.",
        confidence=0.75,
    ),
    _r(
        "curl-network",
        C.NETWORK,
        r"curl: \((6|7|28|35|52|56)\)",
        "curl failed on the network.",
        "Re-run the job.",
        confidence=0.85,
    ),
    _r(
        "max-retries",
        C.NETWORK,
        r"(max retries exceeded with url|npm ERR! network)",
        "Repeated network requests failed.",
        "Re-run the job.",
        confidence=0.8,
    ),
    _r(
        "command-timeout",
        C.TIMEOUT,
        r"(timeout: sending signal|command timed out|timed out after [0-9]+ ?(s|seconds|minutes)\b)",
        "A command was stopped by a time limit.",
        "Find what hung; raise the limit only if the work grew.",
        pattern=r"(timeout: sending signal|\bcommand timed out\b|^(##\[error\])?.*\btimed out after \d+ ?(s|seconds|minutes)\b)",
        confidence=0.7,
    ),
    # --- dependency resolution ------------------------------------------------------------
    _r(
        "pip-resolution",
        C.DEPENDENCY,
        r"(ResolutionImpossible|conflicting dependencies|Could not find a version that satisfies the requirement|No matching distribution found for)",
        "pip could not find or reconcile the required package versions.",
        "Relax or fix the version constraints; check the package name and Python version.",
        # pip: "... because these package versions have conflicting dependencies." (scalac's
        # "check for conflicting dependencies with -Ylog-classpath" is advice, not this)
        pattern=r"ResolutionImpossible|(have|has) conflicting dependencies|Could not find a version that satisfies the requirement|No matching distribution found for",
        confidence=0.95,
    ),
    _r(
        "npm-resolution",
        C.DEPENDENCY,
        r"(ERESOLVE|ETARGET|No matching version found for|code E404|404 Not Found - GET https://registry|Couldn't find any versions for|Couldn't find package|ERR_PNPM_[A-Z_]*(RESOLUTION|NO_MATCHING|PEER|OUTDATED_LOCKFILE|FETCH_404))",
        "npm/yarn/pnpm could not resolve the dependency tree.",
        "Fix the conflicting ranges (or use --legacy-peer-deps deliberately); update the lockfile.",
        confidence=0.95,
    ),
    _r(
        "lockfile-outdated",
        C.DEPENDENCY,
        r"(lockfile needs to be updated|lockfile would have been modified|can only install packages when your package\.json and package-lock\.json|frozen-lockfile|poetry\.lock is not consistent|lock file is not up to date|Cargo\.lock needs to be updated)",
        "The lockfile does not match the manifest.",
        "Regenerate and commit the lockfile.",
        confidence=0.9,
    ),
    _r(
        "maven-resolution",
        C.DEPENDENCY,
        r"(could not resolve dependencies|failed to collect dependencies|could not find artifact|non-resolvable parent pom|failed to read artifact descriptor|ExtensionResolutionException|could not be resolved)",
        "Maven could not resolve a dependency, plugin or extension.",
        "Check the coordinates and repositories; the artifact may not be published.",
        confidence=0.9,
    ),
    _r(
        "gradle-resolution",
        C.DEPENDENCY,
        r"(could not resolve all (files|dependencies|artifacts) for configuration|could not resolve [a-z0-9_.-]+:[a-z0-9_.-]+|could not find [a-z0-9_.-]+:[a-z0-9_.-]+:)",
        "Gradle could not resolve a dependency.",
        "Check the coordinates and repositories; the version may not exist.",
        pattern=r"(could not resolve all (files|dependencies|artifacts) for configuration|^\s*> could not (resolve|find) [\w.-]+:[\w.-]+)",
        confidence=0.9,
    ),
    _r(
        "go-module",
        C.DEPENDENCY,
        r"(missing go\.sum entry|unknown revision|checksum mismatch|cannot find module providing package|go: updates to go\.mod needed|invalid version: )",
        "Go could not resolve a module.",
        "Run `go mod tidy` and commit go.mod/go.sum; check the version exists.",
        confidence=0.9,
    ),
    _r(
        "cargo-resolution",
        C.DEPENDENCY,
        r"(failed to select a version for|no matching package named|failed to get `)",
        "Cargo could not resolve a dependency.",
        "Fix the version requirement.",
        confidence=0.9,
    ),
    _r(
        "ruby-python-solver",
        C.DEPENDENCY,
        r"(SolverProblemError|version solving failed|Could not find gem|Bundler could not find compatible versions|Unable to locate package|has no installation candidate)",
        "The package manager's solver found no solution, or a package does not exist.",
        "Fix the version constraints or the package name.",
        confidence=0.9,
    ),
    _r(
        "node-missing-module",
        C.DEPENDENCY,
        r"Cannot find module '",
        "A Node.js package is not installed.",
        "Add it to package.json (dependencies or devDependencies) and reinstall.",
        pattern=r"Error: Cannot find module '(?![./])",
        case_sensitive=True,
        confidence=0.8,
    ),
    _r(
        "python-missing-module",
        C.DEPENDENCY,
        r"(ModuleNotFoundError|No module named)",
        "A Python module is not installed.",
        "Add the package to the requirements of this job (or fix the import).",
        pattern=r"\bModuleNotFoundError: No module named\b|^(E\s+)?ImportError: No module named\b",
        confidence=0.6,
    ),
    _r(
        "native-build",
        C.DEPENDENCY,
        r"(Failed building wheel for|Failed to build installable wheels|subprocess-exited-with-error|node-gyp|gyp ERR!)",
        "A dependency with native code failed to build.",
        "Install the system headers/toolchain it needs, or pin a version with a wheel.",
        pattern=r"(Failed building wheel for|Failed to build installable wheels|^(error|ERROR): subprocess-exited-with-error|gyp ERR! (build|stack|configure) error)",
        confidence=0.8,
    ),
)
