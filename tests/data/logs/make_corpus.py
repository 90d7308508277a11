"""Write the labelled corpus of CI logs in this directory (run it to regenerate).

    .venv/bin/python tests/data/logs/make_corpus.py

Each scenario is a failing Actions job log and a passing log of the same job (another run:
other timestamps, durations, ids and temp paths). Lines marked `!` in a scenario are the
ones that explain the failure; they were chosen when the scenario was written, before the
analyzer was run on it, and go to labels.json with the category and the failing tests.
Benign lines that look like errors (deprecations, tests named *error*, retries that
succeeded) appear in both runs on purpose.
"""

# ruff: noqa: E501  (patterns and log lines read best unbroken)

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent / "corpus"

PY_SETUP = [
    "Collecting requests>=2.31 (from -r requirements.txt (line 3))",
    "  Downloading requests-2.31.0-py3-none-any.whl ({kb} kB)",
    "DEPRECATION: Legacy editable install of acme-app==0.1.0 will be removed in pip 24.1. Discussion can be found at https://github.com/pypa/pip/issues/11457",
    "Installing collected packages: urllib3, idna, charset-normalizer, certifi, requests",
    "Successfully installed certifi-2024.2.2 charset-normalizer-3.3.2 idna-3.6 requests-2.31.0 urllib3-2.2.1",
    "WARNING: There was an error checking the latest version of pip.",
]
PY_TESTS_OK = [
    "============================= test session starts ==============================",
    "platform linux -- Python 3.11.8, pytest-8.1.1, pluggy-1.4.0",
    "rootdir: /home/runner/work/app/app",
    "collected 48 items",
    "",
    "tests/test_api.py::test_error_handling PASSED                            [ 10%]",
    "tests/test_api.py::test_raises_on_failure PASSED                         [ 20%]",
    "tests/test_models.py::test_exception_message PASSED                      [ 40%]",
    "tests/test_models.py::test_timeout_is_configurable PASSED                [ 60%]",
]
NODE_SETUP = [
    "npm WARN deprecated request@2.88.2: request has been deprecated, see https://github.com/request/request/issues/3142",
    "npm WARN deprecated uuid@3.4.0: Please upgrade  to version 7 or higher.",
    "added 812 packages, and audited 813 packages in {secs}s",
    "found 0 vulnerabilities",
]
JAVA_SETUP = [
    "[INFO] Scanning for projects...",
    '[WARNING] The requested profile "ci" could not be activated because it does not exist.',
    "[INFO] Downloading from central: https://repo.maven.apache.org/maven2/org/junit/junit-bom/5.10.2/junit-bom-5.10.2.pom",
    "[INFO] --- maven-compiler-plugin:3.11.0:compile (default-compile) @ app ---",
    "[INFO] Compiling 42 source files with javac [debug target 17] to target/classes",
]
GO_SETUP = [
    "go: downloading github.com/stretchr/testify v1.9.0",
    "go: downloading golang.org/x/sys v0.18.0",
    "ok  \tgithub.com/acme/app/internal/errors\t0.{ms}s",
]


@dataclass
class Scenario:
    name: str
    category: str
    command: str
    setup: list[str]
    failing: list[str]  # output of the failing step; `!` marks an explaining line
    passing: list[str]  # the same step's output in a passing run
    exit_code: int | None = 1
    failing_tests: list[str] = field(default_factory=list)
    plain: bool = False  # a non-Actions log (Jenkins/Travis)
    after_error: list[str] = field(default_factory=list)  # job-level lines after the step


def s(
    name: str,
    category: str,
    command: str,
    setup: list[str],
    failing: list[str],
    passing: list[str],
    **kw: object,
) -> Scenario:
    return Scenario(name, category, command, setup, failing, passing, **kw)  # type: ignore[arg-type]


SCENARIOS: list[Scenario] = [
    # ---------------- timeout
    s(
        "timeout-job",
        "timeout",
        "pytest -x tests/integration",
        PY_SETUP,
        [*PY_TESTS_OK, "tests/integration/test_sync.py::test_full_sync "],
        [
            *PY_TESTS_OK,
            "tests/integration/test_sync.py::test_full_sync PASSED [100%]",
            "============ 48 passed in 93.20s ============",
        ],
        exit_code=None,
        after_error=[
            "!##[error]The job running on runner GitHub Actions 12 has exceeded the maximum execution time of 30 minutes.",
            "!##[error]The operation was canceled.",
        ],
    ),
    s(
        "timeout-step",
        "timeout",
        "npm run test:e2e",
        NODE_SETUP,
        [
            "> app@1.0.0 test:e2e",
            "> playwright test",
            "Running 24 tests using 2 workers",
            "  ✓  [chromium] › login.spec.ts:12:5 › logs in (3.2s)",
        ],
        [
            "> app@1.0.0 test:e2e",
            "> playwright test",
            "Running 24 tests using 2 workers",
            "  24 passed (1.4m)",
        ],
        exit_code=None,
        after_error=["!##[error]The action 'Run npm run test:e2e' has timed out after 10 minutes."],
    ),
    s(
        "timeout-canceled",
        "timeout",
        "./gradlew integrationTest",
        JAVA_SETUP,
        [
            "> Task :integrationTest",
            "ReplicationIT > replicatesUnderLoad() STARTED",
        ],
        [
            "> Task :integrationTest",
            "ReplicationIT > replicatesUnderLoad() PASSED",
            "BUILD SUCCESSFUL in 4m 2s",
        ],
        exit_code=None,
        after_error=["!##[error]The operation was canceled."],
    ),
    s(
        "timeout-travis",
        "timeout",
        "make test",
        [],
        [
            "$ make test",
            "go test ./... -count=1",
            "ok  \tgithub.com/acme/app/api\t1.204s",
            "!No output has been received in the last 10m0s, this potentially indicates a stalled build or something wrong with the build itself.",
            "Check the details on how to adjust your build configuration on: https://docs.travis-ci.com/user/common-build-problems/#build-times-out-because-no-output-was-received",
            "The build has been terminated",
        ],
        [
            "$ make test",
            "go test ./... -count=1",
            "ok  \tgithub.com/acme/app/api\t1.204s",
            'The command "make test" exited with 0.',
        ],
        exit_code=None,
        plain=True,
    ),
    s(
        "timeout-jenkins",
        "timeout",
        "mvn verify",
        [],
        [
            "[Pipeline] { (Test)",
            "[Pipeline] sh",
            "+ mvn -B verify",
            "[INFO] Running com.acme.app.SlowIT",
            "!Build timed out (after 60 minutes). Marking the build as aborted.",
            "Build was aborted",
            "[Pipeline] }",
            "Finished: ABORTED",
        ],
        [
            "[Pipeline] { (Test)",
            "[Pipeline] sh",
            "+ mvn -B verify",
            "[INFO] Running com.acme.app.SlowIT",
            "[INFO] BUILD SUCCESS",
            "Finished: SUCCESS",
        ],
        exit_code=None,
        plain=True,
    ),
    # ---------------- resource exhaustion
    s(
        "oom-killed",
        "resource_exhaustion",
        "python train.py --epochs 3",
        PY_SETUP,
        [
            "epoch 1/3: loss=0.734",
            "loading shard 7/12 into memory",
            "!/home/runner/work/_temp/{tmp}.sh: line 1:  2345 Killed                  python train.py --epochs 3",
        ],
        [
            "epoch 1/3: loss=0.734",
            "loading shard 7/12 into memory",
            "epoch 3/3: loss=0.412",
            "saved model to out/model.bin",
        ],
        exit_code=137,
    ),
    s(
        "oom-memoryerror",
        "resource_exhaustion",
        "python scripts/build_index.py",
        PY_SETUP,
        [
            "Building index for 1200000 documents",
            "Traceback (most recent call last):",
            '  File "/home/runner/work/app/app/scripts/build_index.py", line 88, in <module>',
            "    matrix = np.zeros((n, n))",
            "!MemoryError: Unable to allocate 10.5 TiB for an array with shape (1200000, 1200000) and data type float64",
        ],
        ["Building index for 1200000 documents", "index written: 1200000 documents"],
    ),
    s(
        "oom-node-heap",
        "resource_exhaustion",
        "npm run build",
        NODE_SETUP,
        [
            "> app@1.0.0 build",
            "> webpack --mode production",
            "<--- Last few GCs --->",
            "[2345:0x5a1c2e0]   123456 ms: Mark-sweep 2046.1 (2083.4) -> 2045.3 (2083.9) MB, 1841.2 / 0.0 ms  allocation failure",
            "!FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory",
            " 1: 0xb7b3e0 node::Abort() [node]",
        ],
        [
            "> app@1.0.0 build",
            "> webpack --mode production",
            "webpack 5.90.3 compiled successfully in 81234 ms",
        ],
        exit_code=134,
    ),
    s(
        "oom-java-heap",
        "resource_exhaustion",
        "mvn -B verify",
        JAVA_SETUP,
        [
            "[INFO] Running com.acme.app.ReportGeneratorTest",
            '!Exception in thread "main" java.lang.OutOfMemoryError: Java heap space',
            "\tat java.base/java.util.Arrays.copyOf(Arrays.java:3537)",
            "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin:3.2.5:test (default-test) on project app: There are test failures.",
        ],
        [
            "[INFO] Running com.acme.app.ReportGeneratorTest",
            "[INFO] Tests run: 5, Failures: 0, Errors: 0, Skipped: 0",
            "[INFO] BUILD SUCCESS",
        ],
    ),
    s(
        "disk-full",
        "resource_exhaustion",
        "docker build -t app .",
        [],
        [
            "#7 [4/6] RUN pip install -r requirements.txt",
            "#7 12.31 Collecting torch==2.2.1",
            "!#7 58.02 ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device",
            '#7 ERROR: process "/bin/sh -c pip install -r requirements.txt" did not complete successfully: exit code: 1',
        ],
        [
            "#7 [4/6] RUN pip install -r requirements.txt",
            "#7 12.31 Collecting torch==2.2.1",
            "#7 DONE 98.2s",
        ],
    ),
    # ---------------- network
    s(
        "net-dns",
        "network",
        "curl -fsSL https://downloads.acme.dev/tool.tar.gz | tar xz",
        [],
        [
            "!curl: (6) Could not resolve host: downloads.acme.dev",
            "tar: This does not look like a tar archive",
        ],
        ["tool/", "tool/bin/tool"],
        exit_code=2,
    ),
    s(
        "net-npm-reset",
        "network",
        "npm ci",
        [],
        [
            "npm WARN deprecated request@2.88.2: request has been deprecated, see https://github.com/request/request/issues/3142",
            "!npm ERR! code ECONNRESET",
            "!npm ERR! network aborted",
            "npm ERR! network This is a problem related to network connectivity.",
            "npm ERR! A complete log of this run can be found in: /home/runner/.npm/_logs/{ts}-debug-0.log",
        ],
        NODE_SETUP,
    ),
    s(
        "net-pip-timeout",
        "network",
        "pip install -r requirements.txt",
        [],
        [
            "Collecting numpy==1.26.4 (from -r requirements.txt (line 1))",
            "  Downloading numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl (18.3 MB)",
            "!pip._vendor.urllib3.exceptions.ReadTimeoutError: HTTPSConnectionPool(host='files.pythonhosted.org', port=443): Read timed out.",
        ],
        [
            "Collecting numpy==1.26.4 (from -r requirements.txt (line 1))",
            "  Downloading numpy-1.26.4-cp311-cp311-manylinux_2_17_x86_64.whl (18.3 MB)",
            "Successfully installed numpy-1.26.4",
        ],
        exit_code=2,
    ),
    s(
        "net-maven-reset",
        "network",
        "mvn -B package",
        JAVA_SETUP[:2],
        [
            "[INFO] Downloading from central: https://repo.maven.apache.org/maven2/com/google/guava/guava/33.0.0-jre/guava-33.0.0-jre.jar",
            "!Caused by: java.net.SocketException: Connection reset",
            "[ERROR] Failed to execute goal on project app: Could not resolve dependencies for project com.acme:app:jar:1.0.0: Could not transfer artifact com.google.guava:guava:jar:33.0.0-jre from/to central (https://repo.maven.apache.org/maven2): Connection reset -> [Help 1]",
        ],
        [*JAVA_SETUP[2:], "[INFO] BUILD SUCCESS"],
    ),
    s(
        "net-go-dial",
        "network",
        "go mod download",
        [],
        [
            '!go: github.com/stretchr/testify@v1.9.0: Get "https://proxy.golang.org/github.com/stretchr/testify/@v/v1.9.0.mod": dial tcp 142.250.74.81:443: i/o timeout',
        ],
        ["go: downloading github.com/stretchr/testify v1.9.0"],
    ),
    # ---------------- rate limit
    s(
        "rl-github-api",
        "rate_limit",
        "python scripts/release_notes.py",
        PY_SETUP,
        [
            "Fetching pull requests since v1.4.0",
            '!github.GithubException.RateLimitExceededException: 403 {"message": "API rate limit exceeded for installation ID 48213.", "documentation_url": "https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}',
        ],
        ["Fetching pull requests since v1.4.0", "Wrote 23 entries to RELEASE_NOTES.md"],
    ),
    s(
        "rl-docker-pull",
        "rate_limit",
        "docker pull postgres:16",
        [],
        [
            "!Error response from daemon: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit",
        ],
        ["16: Pulling from library/postgres", "Status: Downloaded newer image for postgres:16"],
    ),
    s(
        "rl-http-429",
        "rate_limit",
        "node scripts/sync-translations.js",
        NODE_SETUP,
        [
            "Syncing 14 locales",
            "!Error: Request failed with status code 429",
            "    at createError (/home/runner/work/app/app/node_modules/axios/lib/core/createError.js:16:15)",
        ],
        ["Syncing 14 locales", "Synced 14 locales"],
    ),
    s(
        "rl-gh-cli",
        "rate_limit",
        "gh release list --limit 100",
        [],
        [
            "!HTTP 403: API rate limit exceeded for user ID 1234567. (https://api.github.com/repos/acme/app/releases?per_page=100)",
        ],
        ["v1.4.0\tLatest\tv1.4.0\t2024-03-01T10:00:00Z"],
    ),
    s(
        "rl-secondary",
        "rate_limit",
        "node scripts/label-issues.js",
        [],
        [
            "Labelling 300 issues",
            "!HttpError: You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
        ],
        ["Labelling 300 issues", "Done"],
    ),
    # ---------------- auth
    s(
        "auth-git",
        "auth",
        "git push origin HEAD:gh-pages",
        [],
        [
            "!remote: Invalid username or password.",
            "!fatal: Authentication failed for 'https://github.com/acme/app.git/'",
        ],
        ["To https://github.com/acme/app.git", "   1a2b3c4..5d6e7f8  HEAD -> gh-pages"],
        exit_code=128,
    ),
    s(
        "auth-bad-credentials",
        "auth",
        "node scripts/comment.js",
        [],
        [
            "!HttpError: Bad credentials",
            "    at /home/runner/work/app/app/node_modules/@octokit/request/dist-node/index.js:86:21",
        ],
        ["Comment posted: https://github.com/acme/app/pull/12#issuecomment-1"],
    ),
    s(
        "auth-npm-401",
        "auth",
        "npm publish --access public",
        [],
        [
            "npm notice 📦  @acme/app@1.4.1",
            "!npm ERR! code E401",
            "!npm ERR! 401 Unauthorized - PUT https://registry.npmjs.org/@acme%2fapp - You must be logged in to publish packages.",
        ],
        ["npm notice 📦  @acme/app@1.4.1", "+ @acme/app@1.4.1"],
    ),
    s(
        "auth-docker-push",
        "auth",
        "docker push ghcr.io/acme/app:latest",
        [],
        [
            "The push refers to repository [ghcr.io/acme/app]",
            "!denied: requested access to the resource is denied",
        ],
        [
            "The push refers to repository [ghcr.io/acme/app]",
            "latest: digest: sha256:{hex64} size: 1573",
        ],
    ),
    s(
        "auth-integration",
        "auth",
        "actions/github-script@v7",
        [],
        [
            "!RequestError [HttpError]: Resource not accessible by integration",
            "!Error: Unhandled error: HttpError: Resource not accessible by integration",
        ],
        ["Labels added"],
    ),
    # ---------------- integration (5xx)
    s(
        "int-npm-503",
        "integration",
        "npm ci",
        [],
        [
            "!npm ERR! code E503",
            "!npm ERR! 503 Service Unavailable - GET https://registry.npmjs.org/left-pad",
        ],
        NODE_SETUP,
    ),
    s(
        "int-pip-502",
        "integration",
        "pip install -r requirements.txt",
        [],
        [
            "Collecting flask==3.0.2 (from -r requirements.txt (line 2))",
            "!ERROR: HTTP error 502 while getting https://files.pythonhosted.org/packages/flask-3.0.2-py3-none-any.whl",
            "!ERROR: Could not install requirement flask==3.0.2 from https://files.pythonhosted.org/packages/flask-3.0.2-py3-none-any.whl because of HTTP error 502 Server Error: Bad Gateway for url: https://files.pythonhosted.org/packages/flask-3.0.2-py3-none-any.whl",
        ],
        [
            "Collecting flask==3.0.2 (from -r requirements.txt (line 2))",
            "Successfully installed flask-3.0.2",
        ],
    ),
    s(
        "int-action-download",
        "integration",
        "actions/checkout@v4",
        [],
        [
            "Download action repository 'actions/checkout@v4' (SHA:{hex40})",
            "!##[error]Failed to download action 'https://api.github.com/repos/actions/checkout/tarball/{hex40}'. Error: Response status code does not indicate success: 500 (Internal Server Error).",
        ],
        ["Download action repository 'actions/checkout@v4' (SHA:{hex40})"],
    ),
    s(
        "int-docker-502",
        "integration",
        "docker pull ghcr.io/acme/base:latest",
        [],
        [
            "!Error response from daemon: received unexpected HTTP status: 502 Bad Gateway",
        ],
        [
            "latest: Pulling from acme/base",
            "Status: Image is up to date for ghcr.io/acme/base:latest",
        ],
    ),
    s(
        "int-maven-503",
        "integration",
        "mvn -B deploy",
        JAVA_SETUP,
        [
            "[INFO] Uploading to releases: https://nexus.acme.dev/repository/releases/com/acme/app/1.0.0/app-1.0.0.jar",
            "!Caused by: org.eclipse.aether.transfer.ArtifactTransferException: Could not transfer artifact com.acme:app:jar:1.0.0 from/to releases (https://nexus.acme.dev/repository/releases): status code: 503, reason phrase: Service Unavailable (503)",
        ],
        [
            "[INFO] Uploaded to releases: https://nexus.acme.dev/repository/releases/com/acme/app/1.0.0/app-1.0.0.jar",
            "[INFO] BUILD SUCCESS",
        ],
    ),
    # ---------------- dependency
    s(
        "dep-pip-resolution",
        "dependency",
        "pip install -r requirements.txt",
        [],
        [
            "Collecting pandas==2.2.1 (from -r requirements.txt (line 4))",
            "!ERROR: Cannot install -r requirements.txt (line 4) and numpy==1.21.0 because these package versions have conflicting dependencies.",
            "The conflict is caused by:",
            '!    pandas 2.2.1 depends on numpy>=1.23.2; python_version == "3.11"',
            "!ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts",
        ],
        [
            "Collecting pandas==2.2.1 (from -r requirements.txt (line 4))",
            "Successfully installed numpy-1.26.4 pandas-2.2.1",
        ],
    ),
    s(
        "dep-npm-eresolve",
        "dependency",
        "npm install",
        [],
        [
            "!npm ERR! code ERESOLVE",
            "!npm ERR! ERESOLVE unable to resolve dependency tree",
            "npm ERR! While resolving: app@1.0.0",
            "!npm ERR! Could not resolve dependency:",
            '!npm ERR! peer react@"^17.0.0" from react-router-dom@5.3.4',
        ],
        NODE_SETUP,
    ),
    s(
        "dep-maven",
        "dependency",
        "mvn -B package",
        JAVA_SETUP[:3],
        [
            "!Could not find artifact com.acme:shared-lib:jar:2.3.4 in central (https://repo.maven.apache.org/maven2)",
            "![ERROR] Failed to execute goal on project app: Could not resolve dependencies for project com.acme:app:jar:1.0.0: Could not find artifact com.acme:shared-lib:jar:2.3.4 in central (https://repo.maven.apache.org/maven2) -> [Help 1]",
        ],
        [*JAVA_SETUP[3:], "[INFO] BUILD SUCCESS"],
    ),
    s(
        "dep-pip-no-version",
        "dependency",
        "pip install -r requirements.txt",
        [],
        [
            "!ERROR: Could not find a version that satisfies the requirement acme-internal==9.9.0 (from versions: 1.0.0, 1.1.0, 1.2.0)",
            "!ERROR: No matching distribution found for acme-internal==9.9.0",
        ],
        ["Successfully installed acme-internal-1.2.0"],
    ),
    s(
        "dep-go-sum",
        "dependency",
        "go build ./...",
        GO_SETUP[:2],
        [
            "!internal/api/server.go:9:2: missing go.sum entry for module providing package github.com/gorilla/mux (imported by github.com/acme/app/internal/api); to add:",
            "\tgo get github.com/acme/app/internal/api",
        ],
        [],
    ),
    # ---------------- compile
    s(
        "compile-javac",
        "compile",
        "mvn -B compile",
        JAVA_SETUP,
        [
            "[INFO] -------------------------------------------------------------",
            "![ERROR] COMPILATION ERROR : ",
            "[INFO] -------------------------------------------------------------",
            "![ERROR] /home/runner/work/app/app/src/main/java/com/acme/app/OrderService.java:[42,17] cannot find symbol",
            "  symbol:   method totalPrice()",
            "  location: variable order of type com.acme.app.Order",
            "[INFO] 1 error",
        ],
        ["[INFO] BUILD SUCCESS"],
    ),
    s(
        "compile-tsc",
        "compile",
        "npx tsc --noEmit",
        NODE_SETUP,
        [
            "!src/cart/total.ts(12,5): error TS2322: Type 'string' is not assignable to type 'number'.",
            "!src/cart/total.ts(30,18): error TS2339: Property 'discount' does not exist on type 'Cart'.",
        ],
        [],
    ),
    s(
        "compile-rustc",
        "compile",
        "cargo build --locked",
        [],
        [
            "   Compiling app v0.3.0 (/home/runner/work/app/app)",
            "!error[E0308]: mismatched types",
            "!  --> src/parser.rs:41:18",
            "   |",
            "41 |     let count: u32 = tokens.len();",
            "   |                ---   ^^^^^^^^^^^^ expected `u32`, found `usize`",
            '!error: could not compile `app` (bin "app") due to 1 previous error',
        ],
        [
            "   Compiling app v0.3.0 (/home/runner/work/app/app)",
            "    Finished dev [unoptimized + debuginfo] target(s) in 21.02s",
        ],
        exit_code=101,
    ),
    s(
        "compile-gcc",
        "compile",
        "make -j2",
        [],
        [
            "gcc -O2 -Wall -c src/buffer.c -o build/buffer.o",
            "!src/buffer.c:88:12: error: 'capacity' undeclared (first use in this function)",
            "make: *** [Makefile:14: build/buffer.o] Error 1",
        ],
        [
            "gcc -O2 -Wall -c src/buffer.c -o build/buffer.o",
            "gcc -o build/app build/main.o build/buffer.o",
        ],
        exit_code=2,
    ),
    s(
        "compile-go",
        "compile",
        "go build ./...",
        GO_SETUP,
        [
            "# github.com/acme/app/internal/store",
            "!internal/store/cache.go:57:9: undefined: evictOldest",
            "!internal/store/cache.go:63:2: declared and not used: stale",
        ],
        [],
    ),
    # ---------------- lint
    s(
        "lint-ruff",
        "lint",
        "ruff check .",
        [],
        [
            "!app/models.py:12:8: F401 [*] `os` imported but unused",
            "!app/views.py:40:89: E501 Line too long (104 > 88)",
            "!Found 2 errors.",
            "[*] 1 fixable with the `--fix` option.",
        ],
        ["All checks passed!"],
    ),
    s(
        "lint-eslint",
        "lint",
        "npx eslint src",
        NODE_SETUP,
        [
            "/home/runner/work/app/app/src/cart.js",
            "!  12:7  error  'unused' is assigned a value but never used  no-unused-vars",
            "!✖ 1 problem (1 error, 0 warnings)",
        ],
        [],
    ),
    s(
        "lint-mypy",
        "lint",
        "mypy src",
        PY_SETUP,
        [
            '!src/app/core.py:33: error: Incompatible return value type (got "str", expected "int")  [return-value]',
            "!Found 1 error in 1 file (checked 20 source files)",
        ],
        ["Success: no issues found in 20 source files"],
    ),
    s(
        "lint-black",
        "lint",
        "black --check .",
        PY_SETUP,
        [
            "!would reformat /home/runner/work/app/app/src/app/cli.py",
            "",
            "!Oh no! 💥 💔 💥",
            "!1 file would be reformatted, 30 files would be left unchanged.",
        ],
        ["All done! ✨ 🍰 ✨", "31 files would be left unchanged."],
    ),
    s(
        "lint-prettier",
        "lint",
        "npx prettier --check .",
        NODE_SETUP,
        [
            "Checking formatting...",
            "[warn] src/App.tsx",
            "![warn] Code style issues found in the above file. Run Prettier to fix.",
        ],
        ["Checking formatting...", "All matched files use Prettier code style!"],
    ),
    # ---------------- test (one per framework)
    s(
        "test-pytest",
        "test",
        "pytest -ra",
        PY_SETUP,
        [
            *PY_TESTS_OK,
            "tests/test_auth.py::test_login FAILED                                     [ 80%]",
            "=================================== FAILURES ===================================",
            "__________________________________ test_login __________________________________",
            "    def test_login(client):",
            "        response = client.post('/login', json={'user': 'a', 'password': 'b'})",
            ">       assert response.status_code == 200",
            "!E       assert 401 == 200",
            "!E        +  where 401 = <Response [401 UNAUTHORIZED]>.status_code",
            "tests/test_auth.py:14: AssertionError",
            "=========================== short test summary info ============================",
            "!FAILED tests/test_auth.py::test_login - assert 401 == 200",
            "!========================= 1 failed, 47 passed in 3.12s =========================",
        ],
        [
            *PY_TESTS_OK,
            "tests/test_auth.py::test_login PASSED [ 80%]",
            "============================== 48 passed in 3.02s ==============================",
        ],
        failing_tests=["tests/test_auth.py::test_login"],
    ),
    s(
        "test-jest",
        "test",
        "npx jest --ci",
        NODE_SETUP,
        [
            "PASS src/utils/format.test.ts",
            "  ✓ formats error messages (3 ms)",
            "!FAIL src/cart/cart.test.ts",
            "!  ● Cart › adds an item",
            "    expect(received).toBe(expected) // Object.is equality",
            "!    Expected: 3",
            "!    Received: 2",
            "!Tests:       1 failed, 41 passed, 42 total",
        ],
        [
            "PASS src/utils/format.test.ts",
            "  ✓ formats error messages (3 ms)",
            "PASS src/cart/cart.test.ts",
            "Tests:       42 passed, 42 total",
        ],
        failing_tests=["Cart › adds an item"],
    ),
    s(
        "test-go",
        "test",
        "go test ./...",
        GO_SETUP,
        [
            "=== RUN   TestParseDuration",
            "!--- FAIL: TestParseDuration (0.00s)",
            '!    duration_test.go:15: ParseDuration("1h") = 60, want 3600',
            "FAIL",
            "!FAIL\tgithub.com/acme/app/internal/timeutil\t0.012s",
        ],
        [
            "=== RUN   TestParseDuration",
            "--- PASS: TestParseDuration (0.00s)",
            "ok  \tgithub.com/acme/app/internal/timeutil\t0.011s",
        ],
        failing_tests=["TestParseDuration"],
    ),
    s(
        "test-maven",
        "test",
        "mvn -B test",
        JAVA_SETUP,
        [
            "[INFO] Running com.acme.app.CalculatorTest",
            "![ERROR] Tests run: 3, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.041 s <<< FAILURE! - in com.acme.app.CalculatorTest",
            "![ERROR] com.acme.app.CalculatorTest.addsNegativeNumbers  Time elapsed: 0.005 s  <<< FAILURE!",
            "!org.opentest4j.AssertionFailedError: expected: <-4> but was: <4>",
            "\tat com.acme.app.CalculatorTest.addsNegativeNumbers(CalculatorTest.java:27)",
            "[INFO] Tests run: 12, Failures: 0, Errors: 0, Skipped: 0",
            "[ERROR] Failures: ",
            "[ERROR]   CalculatorTest.addsNegativeNumbers:27 expected: <-4> but was: <4>",
            "[ERROR] Tests run: 15, Failures: 1, Errors: 0, Skipped: 0",
        ],
        [
            "[INFO] Running com.acme.app.CalculatorTest",
            "[INFO] Tests run: 3, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.040 s - in com.acme.app.CalculatorTest",
            "[INFO] BUILD SUCCESS",
        ],
        failing_tests=["com.acme.app.CalculatorTest.addsNegativeNumbers"],
    ),
    s(
        "test-rust",
        "test",
        "cargo test",
        [],
        [
            "running 11 tests",
            "test lexer::tests::handles_errors ... ok",
            "!test parser::tests::parses_empty_input ... FAILED",
            "failures:",
            "---- parser::tests::parses_empty_input stdout ----",
            "!thread 'parser::tests::parses_empty_input' panicked at src/parser.rs:120:9:",
            "!assertion `left == right` failed",
            "!test result: FAILED. 10 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.02s",
        ],
        [
            "running 11 tests",
            "test lexer::tests::handles_errors ... ok",
            "test parser::tests::parses_empty_input ... ok",
            "test result: ok. 11 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.02s",
        ],
        exit_code=101,
        failing_tests=["parser::tests::parses_empty_input"],
    ),
    s(
        "test-gradle",
        "test",
        "./gradlew test",
        JAVA_SETUP[:1],
        [
            "> Task :test",
            "!InvoiceTest > roundsTotals() FAILED",
            "!    org.opentest4j.AssertionFailedError at InvoiceTest.java:41",
            "!12 tests completed, 1 failed",
            "> Task :test FAILED",
            "FAILURE: Build failed with an exception.",
        ],
        ["> Task :test", "BUILD SUCCESSFUL in 31s"],
        failing_tests=["InvoiceTest.roundsTotals()"],
    ),
    s(
        "test-unittest",
        "test",
        "python -m unittest -v",
        PY_SETUP,
        [
            "test_error_path (tests.test_math.MathTest.test_error_path) ... ok",
            "test_sum (tests.test_math.MathTest.test_sum) ... FAIL",
            "======================================================================",
            "!FAIL: test_sum (tests.test_math.MathTest.test_sum)",
            "----------------------------------------------------------------------",
            "Traceback (most recent call last):",
            '  File "/home/runner/work/app/app/tests/test_math.py", line 9, in test_sum',
            "    self.assertEqual(add(1, 2), 4)",
            "!AssertionError: 3 != 4",
            "!FAILED (failures=1)",
        ],
        [
            "test_error_path (tests.test_math.MathTest.test_error_path) ... ok",
            "test_sum (tests.test_math.MathTest.test_sum) ... ok",
            "OK",
        ],
        failing_tests=["test_sum (tests.test_math.MathTest)"],
    ),
    s(
        "test-mocha",
        "test",
        "npx mocha",
        NODE_SETUP,
        [
            "  Parser",
            "    ✓ parses strings",
            "    1) parses numbers",
            "  12 passing (40ms)",
            "!  1 failing",
            "  1) Parser",
            "       parses numbers:",
            "!     AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:",
            "",
            "1 !== 2",
        ],
        ["  Parser", "    ✓ parses strings", "    ✓ parses numbers", "  13 passing (40ms)"],
        failing_tests=["Parser parses numbers"],
    ),
    # ---------------- flaky tests
    s(
        "flaky-rerun",
        "flaky_test",
        "pytest --reruns 2",
        PY_SETUP,
        [
            *PY_TESTS_OK,
            "!tests/test_ws.py::test_reconnect RERUN                                   [ 90%]",
            "tests/test_ws.py::test_reconnect RERUN                                   [ 90%]",
            "tests/test_ws.py::test_reconnect FAILED                                  [ 90%]",
            "=========================== short test summary info ============================",
            "!FAILED tests/test_ws.py::test_reconnect - ConnectionResetError: [Errno 104] Connection reset by peer",
            "============== 1 failed, 47 passed, 2 rerun in 12.31s ==============",
        ],
        [
            *PY_TESTS_OK,
            "tests/test_ws.py::test_reconnect PASSED [ 90%]",
            "============== 48 passed in 10.02s ==============",
        ],
        failing_tests=["tests/test_ws.py::test_reconnect"],
    ),
    s(
        "flaky-mocha-timeout",
        "flaky_test",
        "npx mocha",
        NODE_SETUP,
        [
            "  Uploader",
            "    1) uploads large files",
            "  20 passing (5s)",
            "!  1 failing",
            "  1) Uploader",
            "       uploads large files:",
            '!     Error: Timeout of 2000ms exceeded. For async tests and hooks, ensure "done()" is called; if returning a Promise, ensure it resolves. (/home/runner/work/app/app/test/upload.test.js)',
        ],
        ["  Uploader", "    ✓ uploads large files (1890ms)", "  21 passing (5s)"],
        failing_tests=["Uploader uploads large files"],
    ),
    s(
        "flaky-jest-timeout",
        "flaky_test",
        "npx jest --ci",
        NODE_SETUP,
        [
            "!FAIL src/api/client.test.ts (6.2 s)",
            "!  ● ApiClient › retries on failure",
            '!    thrown: "Exceeded timeout of 5000 ms for a test.',
            '    Add a timeout value to this test to increase the timeout, if this is a long-running test. See https://jestjs.io/docs/api#testname-fn-timeout."',
            "Tests:       1 failed, 30 passed, 31 total",
        ],
        ["PASS src/api/client.test.ts", "Tests:       31 passed, 31 total"],
        failing_tests=["ApiClient › retries on failure"],
    ),
    s(
        "flaky-junit-timeout",
        "flaky_test",
        "./gradlew test",
        JAVA_SETUP[:1],
        [
            "!SessionCacheTest > expiresEntries() FAILED",
            "!    org.junit.runners.model.TestTimedOutException: test timed out after 2000 milliseconds",
            "30 tests completed, 1 failed",
            "> Task :test FAILED",
        ],
        ["SessionCacheTest > expiresEntries() PASSED", "BUILD SUCCESSFUL in 40s"],
        failing_tests=["SessionCacheTest.expiresEntries()"],
    ),
    s(
        "flaky-go-race",
        "flaky_test",
        "go test -race ./...",
        GO_SETUP,
        [
            "!WARNING: DATA RACE",
            "Write at 0x00c0001a4018 by goroutine 9:",
            "  github.com/acme/app/internal/pool.(*Pool).Put()",
            "!--- FAIL: TestPoolConcurrent (0.04s)",
            "!    testing.go:1398: race detected during execution of test",
            "FAIL\tgithub.com/acme/app/internal/pool\t0.071s",
        ],
        ["ok  \tgithub.com/acme/app/internal/pool\t0.069s"],
        failing_tests=["TestPoolConcurrent"],
    ),
    # ---------------- infrastructure
    s(
        "infra-lost",
        "infrastructure",
        "./gradlew build",
        JAVA_SETUP[:1],
        [
            "> Task :compileJava",
        ],
        ["> Task :compileJava", "BUILD SUCCESSFUL in 2m 10s"],
        exit_code=None,
        after_error=[
            "!##[error]The hosted runner: GitHub Actions 7 lost communication with the server. Anything in your workflow that terminates the runner process, starves it for CPU/Memory, or blocks its network access can cause this error."
        ],
    ),
    s(
        "infra-shutdown",
        "infrastructure",
        "make integration",
        [],
        [
            "starting services",
        ],
        ["starting services", "all services healthy"],
        exit_code=None,
        after_error=[
            "!##[error]The runner has received a shutdown signal. This can happen when the runner service is stopped, or a manually started runner is canceled."
        ],
    ),
    s(
        "infra-disk",
        "infrastructure",
        "docker compose build",
        [],
        [
            "!You are running out of disk space. The runner will stop working when the machine runs out of disk space. Free space left: 42 MB",
            "Building api",
        ],
        ["Building api", "Successfully built api"],
        exit_code=None,
        after_error=["##[error]The operation was canceled."],
    ),
    s(
        "infra-concurrency",
        "infrastructure",
        "npm test",
        NODE_SETUP,
        [
            "> app@1.0.0 test",
        ],
        ["> app@1.0.0 test", "Tests: 42 passed, 42 total"],
        exit_code=None,
        after_error=[
            "!##[error]Canceling since a higher priority waiting request for 'ci-refs/heads/main' exists",
            "##[error]The operation was canceled.",
        ],
    ),
    s(
        "infra-no-runner",
        "infrastructure",
        "./scripts/gpu-tests.sh",
        [],
        [],
        ["42 passed"],
        exit_code=None,
        after_error=[
            "!##[error]No runner matching the specified labels was found: self-hosted, linux, gpu."
        ],
    ),
    # ---------------- config
    s(
        "config-input",
        "config",
        "softprops/action-gh-release@v2",
        [],
        [
            "!##[error]Input required and not supplied: token",
        ],
        ["Release created: https://github.com/acme/app/releases/tag/v1.4.0"],
        exit_code=None,
    ),
    s(
        "config-command",
        "config",
        "poetry install",
        [],
        [
            "!/home/runner/work/_temp/{tmp}.sh: line 1: poetry: command not found",
        ],
        ["Installing dependencies from lock file", "Installing the current project: app (0.1.0)"],
        exit_code=127,
    ),
    s(
        "config-missing-script",
        "config",
        "npm run test:ci",
        NODE_SETUP,
        [
            '!npm ERR! Missing script: "test:ci"',
            "npm ERR! To see a list of scripts, run:",
            "npm ERR!   npm run",
        ],
        ["> app@1.0.0 test:ci", "Tests: 42 passed, 42 total"],
    ),
    s(
        "config-no-tests",
        "config",
        "pytest tests/unit",
        PY_SETUP,
        [
            "!ERROR: file or directory not found: tests/unit",
            "",
            "!no tests ran in 0.01s",
        ],
        [
            *PY_TESTS_OK,
            "============================== 48 passed in 3.02s ==============================",
        ],
        exit_code=4,
    ),
    s(
        "config-bad-action",
        "config",
        "actions/setup-pyhton@v5",
        [],
        [],
        ["Successfully set up CPython (3.11.8)"],
        exit_code=None,
        after_error=[
            "!##[error]Unable to resolve action `actions/setup-pyhton@v5`, repository not found"
        ],
    ),
    # ---------------- unknown (a failure no rule names)
    s(
        "unknown-script",
        "unknown",
        "./scripts/check-release.sh",
        [],
        [
            "Checking release notes for v1.4.1",
            "!Release notes are missing an entry for #482",
        ],
        ["Checking release notes for v1.4.1", "Release notes complete"],
    ),
    s(
        "unknown-segfault",
        "unknown",
        "python -m app.bench",
        PY_SETUP,
        [
            "benchmark: 3 rounds",
            "!Fatal Python error: Segmentation fault",
            "!/home/runner/work/_temp/{tmp}.sh: line 1:  2345 Segmentation fault      (core dumped) python -m app.bench",
        ],
        ["benchmark: 3 rounds", "mean 12.3 ms"],
        exit_code=139,
    ),
    s(
        # A check that a committed file matches its generated form: lint (issue 14), not
        # unknown (the file name is kept so the corpus stays comparable).
        "unknown-diff",
        "lint",
        "git diff --exit-code",
        [],
        [
            "!diff --git a/docs/cli.md b/docs/cli.md",
            "index 1a2b3c4..5d6e7f8 100644",
            "--- a/docs/cli.md",
            "+++ b/docs/cli.md",
            "!-  --verbose   print more",
            "!+  --verbose   print more output",
        ],
        [],
    ),
    s(
        "unknown-exit",
        "unknown",
        "./run-smoke.sh",
        [],
        [
            "smoke: starting 3 checks",
            "smoke: check 1 ok",
            "!smoke: check 2 returned 1",
        ],
        ["smoke: starting 3 checks", "smoke: check 1 ok", "smoke: check 2 ok", "smoke: check 3 ok"],
    ),
    s(
        "unknown-python-crash",
        "unknown",
        "python scripts/migrate.py",
        PY_SETUP,
        [
            "Traceback (most recent call last):",
            '  File "/home/runner/work/app/app/scripts/migrate.py", line 12, in <module>',
            "    main()",
            "!KeyError: 'DATABASE_URL'",
        ],
        ["Applied 3 migrations"],
    ),
]


class Clock:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.t = rng.randrange(0, 3000)
        self.day = rng.choice([3, 4]) + 10

    def stamp(self) -> str:
        self.t += self.rng.randrange(1, 400)
        ms = self.t
        h, rem = divmod(ms // 1000, 3600)
        m, sec = divmod(rem, 60)
        frac = self.rng.randrange(10**7)
        return f"2024-04-{self.day:02d}T{10 + h:02d}:{m:02d}:{sec:02d}.{frac:07d}Z "


def fill(line: str, rng: random.Random) -> str:
    values = {
        "kb": str(rng.randrange(60, 90)),
        "secs": str(rng.randrange(5, 40)),
        "ms": str(rng.randrange(10, 99)),
        "tmp": "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}".format(
            *tuple(rng.getrandbits(b) for b in (32, 16, 16, 16, 48))
        ),
        "ts": f"2024-04-1{rng.randrange(10)}T10_{rng.randrange(60):02d}_"
        f"{rng.randrange(60):02d}_{rng.randrange(1000):03d}Z",
        "hex40": f"{rng.getrandbits(160):040x}",
        "hex64": f"{rng.getrandbits(256):064x}",
    }
    for key, value in values.items():
        line = line.replace("{" + key + "}", value)
    return line


def render(sc: Scenario, failing: bool, seed: int) -> tuple[list[str], list[int]]:
    """The log lines and the 1-based numbers of the labelled lines."""
    rng = random.Random(seed)
    clock = Clock(rng)
    out: list[str] = []
    labels: list[int] = []

    def emit(line: str, actions_prefix: bool = True) -> None:
        labelled = line.startswith("!")
        text = fill(line[1:] if labelled else line, rng)
        stamp = clock.stamp() if actions_prefix and not sc.plain else ""
        out.append(stamp + text)
        if labelled and failing:
            labels.append(len(out))

    body = sc.failing if failing else sc.passing
    if sc.plain:
        for line in body:
            emit(line, False)
        if not failing:
            emit("Finished: SUCCESS", False)
        return out, labels
    runner = rng.randrange(1, 20)
    for line in [
        "Current runner version: '2.315.0'",
        "Operating System",
        "  Ubuntu",
        "  22.04.4",
        "Runner Image",
        "  Included Software: https://github.com/actions/runner-images/blob/ubuntu22/20240407.1/images/ubuntu/Ubuntu2204-Readme.md",
        f"Runner name: 'GitHub Actions {runner}'",
        "##[group]GITHUB_TOKEN Permissions",
        "Contents: read",
        "Metadata: read",
        "##[endgroup]",
        "Secret source: Actions",
        "Prepare workflow directory",
        "Prepare all required actions",
        f"Download action repository 'actions/checkout@v4' (SHA:{f'{rng.getrandbits(160):040x}'})",
        "Complete job name: build",
        "##[group]Run actions/checkout@v4",
        "with:",
        "  repository: acme/app",
        "##[endgroup]",
        "Syncing repository: acme/app",
        f"[command]/usr/bin/git -c protocol.version=2 fetch --no-tags --prune --no-recurse-submodules --depth=1 origin +{f'{rng.getrandbits(160):040x}'}:refs/remotes/origin/main",
        f"HEAD is now at {f'{rng.getrandbits(28):07x}'} Update README",
    ]:
        emit(line)
    if sc.setup:
        emit("##[group]Run ./scripts/setup.sh")
        emit("##[endgroup]")
        for line in sc.setup:
            emit(line)
    emit(f"##[group]Run {sc.command}")
    emit(f"{sc.command}")
    emit("shell: /usr/bin/bash -e {0}")
    emit("##[endgroup]")
    for line in body:
        emit(line)
    if failing:
        for line in sc.after_error:
            emit(line)
        if sc.exit_code is not None:
            emit(f"##[error]Process completed with exit code {sc.exit_code}.")
    emit("Post job cleanup.")
    emit("[command]/usr/bin/git version")
    emit("Cleaning up orphan processes")
    return out, labels


def main() -> None:
    HERE.mkdir(exist_ok=True)
    labels: dict[str, dict[str, object]] = {}
    for index, sc in enumerate(SCENARIOS):
        fail_lines, evidence = render(sc, True, seed=1000 + index)
        pass_lines, _ = render(sc, False, seed=5000 + index)
        fail_name, pass_name = f"{sc.name}.log", f"{sc.name}.pass.log"
        (HERE / fail_name).write_text("\n".join(fail_lines) + "\n", encoding="utf-8")
        (HERE / pass_name).write_text("\n".join(pass_lines) + "\n", encoding="utf-8")
        labels[fail_name] = {
            "category": sc.category,
            "evidence": evidence,
            "failing_tests": sc.failing_tests,
            "passing_log": pass_name,
        }
    (HERE / "labels.json").write_text(
        json.dumps(labels, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {len(labels)} failing logs and their passing runs to {HERE}")


if __name__ == "__main__":
    main()
