"""Rules, first in priority: Actions steps and Jenkins stages (structure), the runner's
own messages (timeouts, lost runners), strong configuration signals, resource exhaustion,
and a dependency built for a newer JVM. rules.py puts the tables in order."""

# ruff: noqa: E501  (patterns and log lines read best unbroken)

from __future__ import annotations

from contexten.analysis.logs.rules_base import Role, Rule, _r
from contexten.analysis.taxonomy import FailureCategory as C

RUNNER_RULES: tuple[Rule, ...] = (
    # --- steps (structure, not causes) -------------------------------------------------
    _r(
        "gha-step",
        None,
        r"##\[group\]Run ",
        "An Actions step starts.",
        pattern=r"^##\[group\]Run (.+)$",
        role=Role.STEP,
        case_sensitive=True,
    ),
    _r(
        "jenkins-stage",
        None,
        r"\[Pipeline\] \{ \(",
        "A Jenkins pipeline stage starts.",
        pattern=r"^\[Pipeline\] \{ \((.+)\)$",
        role=Role.STEP,
        case_sensitive=True,
    ),
    # --- timeouts ----------------------------------------------------------------------
    _r(
        "gha-job-timeout",
        C.TIMEOUT,
        r"has exceeded the maximum execution time",
        "The job ran longer than its timeout-minutes.",
        "Find what hung or slowed down; raise timeout-minutes only if the work really grew.",
        confidence=0.97,
    ),
    _r(
        "gha-action-timeout",
        C.TIMEOUT,
        r"has timed out after [0-9]+ minutes",
        "A step ran longer than its timeout-minutes.",
        "Find what hung in the step; raise the step's timeout-minutes if the work grew.",
        confidence=0.95,
    ),
    _r(
        "ci-no-output-timeout",
        C.TIMEOUT,
        r"(no output has been received in the last|build timed out \(after|exceeded the maximum time limit for jobs)",
        "The CI system stopped a job that was silent or ran too long.",
        "Make long commands print progress; look for a hang.",
        confidence=0.95,
    ),
    # --- infrastructure ------------------------------------------------------------------
    _r(
        "gha-runner-lost",
        C.INFRASTRUCTURE,
        r"lost communication with the server",
        "The runner stopped answering (the machine died, was pre-empted or overloaded).",
        "Re-run the job; if it repeats, the job may be exhausting the runner.",
        confidence=0.97,
    ),
    _r(
        "gha-runner-shutdown",
        C.INFRASTRUCTURE,
        r"runner has received a shutdown signal",
        "The runner was shut down during the job.",
        "Re-run the job.",
        confidence=0.95,
    ),
    _r(
        "gha-runner-disk",
        C.INFRASTRUCTURE,
        r"running out of disk space",
        "The runner is out of disk space.",
        "Free space at the start of the job (remove unused toolchains, docker prune) or use a bigger runner.",
        confidence=0.9,
    ),
    _r(
        "gha-concurrency-cancel",
        C.INFRASTRUCTURE,
        r"(Canceling since a higher priority waiting request|cancell?ed by another run|was cancell?ed by)",
        "The run was cancelled by concurrency settings or by a person.",
        "Nothing to fix in the code; re-run if the result is still needed.",
        confidence=0.9,
    ),
    _r(
        "gha-provisioning",
        C.INFRASTRUCTURE,
        r"(error occurred while provisioning resources|no runner matching the specified labels|could not find any self-hosted runner)",
        "No runner could be provisioned for the job.",
        "Check the runner labels and the runner pool.",
        confidence=0.9,
    ),
    # --- configuration (strong signals) ---------------------------------------------------
    _r(
        "gha-invalid-workflow",
        C.CONFIG,
        r"(invalid workflow file|the workflow is not valid|Unrecognized named-value|Unexpected value '|Unable to resolve action|Can't find 'action\.ya?ml')",
        "The workflow file or an action reference is invalid.",
        "Fix the workflow YAML (actionlint finds most of these).",
        confidence=0.95,
    ),
    _r(
        "gha-input-required",
        C.CONFIG,
        r"Input required and not supplied",
        "An action is missing a required input (often a secret that is not set).",
        "Set the input; for a secret, check it exists in this repository/environment.",
        confidence=0.9,
    ),
    # --- resource exhaustion ---------------------------------------------------------------
    _r(
        "node-heap-oom",
        C.RESOURCE_EXHAUSTION,
        r"heap out of memory",
        "Node.js ran out of heap.",
        "Raise --max-old-space-size, or find the leak; split the work.",
        confidence=0.95,
    ),
    _r(
        "jvm-oom",
        C.RESOURCE_EXHAUSTION,
        r"OutOfMemoryError",
        "The JVM ran out of memory.",
        "Raise -Xmx / org.gradle.jvmargs / maxHeapSize, or find the leak.",
        pattern=r"\bjava\.lang\.OutOfMemoryError\b|\bOutOfMemoryError: (Java heap space|GC overhead|Metaspace)",
        confidence=0.95,
    ),
    _r(
        "python-memoryerror",
        C.RESOURCE_EXHAUSTION,
        r"MemoryError",
        "Python could not allocate memory.",
        "Reduce the data size or use a bigger runner.",
        pattern=r"(^|\s|:)MemoryError\b",
        case_sensitive=True,
        confidence=0.9,
    ),
    _r(
        "go-oom",
        C.RESOURCE_EXHAUSTION,
        r"(runtime: out of memory|cannot allocate memory|std::bad_alloc|out of memory: kill)",
        "A process could not allocate memory or the kernel OOM killer ran.",
        "Reduce parallelism or memory use; use a bigger runner.",
        confidence=0.9,
    ),
    _r(
        "exit-137",
        C.RESOURCE_EXHAUSTION,
        r"(exit code 137\b|exit status 137\b|exited with 137\b|signal: killed|OOMKilled|code 137\b)",
        "A process was killed with SIGKILL (exit 137), usually by the out-of-memory killer.",
        "Reduce parallelism or memory use; use a bigger runner.",
        confidence=0.85,
    ),
    _r(
        "disk-full",
        C.RESOURCE_EXHAUSTION,
        r"(no space left on device|ENOSPC|disk quota exceeded)",
        "A write failed because the disk is full.",
        "Free space early in the job (docker prune, remove unused toolchains).",
        confidence=0.9,
    ),
    _r(
        "killed-line",
        C.RESOURCE_EXHAUSTION,
        r"Killed",
        "The shell reports that a process was killed (usually the OOM killer).",
        "Reduce memory use or parallelism.",
        pattern=r"^(.*: line \d+: +\d+ +)?Killed(\s{2,}\S.*)?$",
        case_sensitive=True,
        confidence=0.75,
    ),
    # --- a dependency built for a newer JVM (before compile: javac reports it too) ------
    _r(
        "class-file-version",
        C.DEPENDENCY,
        r"(class file has wrong version|UnsupportedClassVersionError|compiled by a more recent version of the Java Runtime|Unsupported class file major version|class file major version [0-9]+)",
        "A class file (usually from a dependency) was compiled for a newer Java than the build runs.",
        "Pin the dependency to a release built for your Java version, or raise the JDK of the job.",
        confidence=0.9,
    ),
)
