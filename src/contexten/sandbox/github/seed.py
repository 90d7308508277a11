"""Demo data: a small repository with a real failing test job, its baseline, a flaky job."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from contexten.sandbox.github.records import JobSpec
from contexten.sandbox.github.state import GitHubState

# ============================================================================ demo data


DEMO_LOG = Path(__file__).parent.parent / "data" / "github" / "pycorrector-tests-failure.log"


def seed_demo(state: GitHubState) -> None:
    """A small repository: a real failing test job, its passing baseline, a flaky job."""
    repo = "contexten-demo/app"
    state.add_repo(repo, default_branch="main", files={"README.md": "# demo\n"})
    state.add_branch(repo, "develop")
    state.add_run(repo, head_branch="develop", jobs=[JobSpec("test"), JobSpec("lint")])
    failing_test = (
        JobSpec.from_log_file(DEMO_LOG, name="test", conclusion="failure")
        if DEMO_LOG.is_file()
        else JobSpec("test", conclusion="failure")
    )
    failing = state.add_run(
        repo,
        head_branch="main",
        jobs=[failing_test, JobSpec("lint")],
        display_title="Make compute() faster",
    )
    state.add_artifact(failing.id, "junit", {"junit.xml": _DEMO_JUNIT})
    state.add_run(
        repo,
        head_branch="main",
        jobs=[JobSpec("integration", conclusion="failure", log=_DEMO_NETWORK_LOG)],
        rerun_outcomes=["success"],
        display_title="Flaky network test",
    )


# The flaky run's log must look like a network failure, or analysing it escalates a
# deterministic-looking test failure instead of re-running it.
_DEMO_NETWORK_LOG = "".join(
    f"2024-05-02T10:00:{second:02d}.0000000Z {text}\n"
    for second, text in enumerate(
        (
            "##[group]Run curl -fsSL -o fixtures.tar.gz https://files.example.com/fixtures.tar.gz",
            "curl -fsSL -o fixtures.tar.gz https://files.example.com/fixtures.tar.gz",
            "##[endgroup]",
            "curl: (6) Could not resolve host: files.example.com",
            "##[error]Process completed with exit code 6.",
            "Cleaning up orphan processes",
        )
    )
)


_DEMO_COLLECTION_ERRORS = {
    "bert_corrector_test": "ImportError: pycorrector dependencies are not fully installed",
    "detector_test": "ModuleNotFoundError: No module named 'kenlm'",
    "en_spell_bug_fix_test": "TypeError: __init__() got an unexpected keyword argument",
    "en_spell_correct_test": "ModuleNotFoundError: No module named 'kenlm'",
    "ernie_csc_corrector_test": "ModuleNotFoundError: No module named 'kenlm'",
    "file_correct_test": "IndexError: list index out of range",
    "kenlm_test": "ModuleNotFoundError: No module named 'kenlm'",
    "macbert_corrector_test": "ModuleNotFoundError: No module named 'kenlm'",
    "simplified_traditional_sentence_test": "ModuleNotFoundError: No module named 'kenlm'",
    "speed_test": "ImportError: pycorrector dependencies are not fully installed",
    "trigram_test": "AttributeError: module 'pycorrector.corrector' has no attribute "
    "'check_corrector_initialized'",
}
# What pytest --junitxml writes for the demo log's 11 collection errors.
_DEMO_JUNIT = (
    '<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="pytest" '
    'errors="11" failures="0" skipped="0" tests="11" time="2.80">\n'
    + "".join(
        f'<testcase classname="" name="tests.{name}" time="0.000">'
        f'<error message="collection failure">{escape(message)}</error>'
        "</testcase>\n"
        for name, message in _DEMO_COLLECTION_ERRORS.items()
    )
    + "</testsuite></testsuites>\n"
)
