"""Workflow lint rules: each with a workflow that breaks it and one that does not."""

from __future__ import annotations

import textwrap

import pytest

from contexten.analysis.workflow_lint import (
    RULES,
    WorkflowFinding,
    WorkflowParseError,
    lint_workflow,
)

CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683 # v4.2.2"
SETUP_PY = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0"

CLEAN = f"""\
name: CI
on:
  push:
    branches: [main]
  pull_request:
permissions: {{}}
concurrency:
  group: ${{{{ github.workflow }}}}-${{{{ github.ref }}}}
  cancel-in-progress: true
jobs:
  test:
    runs-on: ubuntu-latest
    timeout-minutes: 30
    permissions:
      contents: read
    steps:
      - uses: {CHECKOUT}
        with:
          persist-credentials: false
      - uses: {SETUP_PY}
        with:
          python-version: "3.11"
          cache: pip
      - run: echo "PR ${{{{ github.event.pull_request.number }}}} at ${{{{ github.sha }}}}"
"""


def lint(text: str) -> tuple[WorkflowFinding, ...]:
    return lint_workflow(textwrap.dedent(text), ".github/workflows/ci.yml")


def rules(text: str) -> list[str]:
    return [f.rule for f in lint(text)]


def test_clean_workflow_has_no_findings() -> None:
    assert lint(CLEAN) == ()


def test_every_rule_has_a_sarif_description() -> None:
    for rule_id, rule in RULES.items():
        assert rule.id == rule_id and rule.short_description and rule.help_text


# --- missing-timeout ---


def test_job_without_timeout_is_reported_at_the_job_key() -> None:
    text = CLEAN.replace("    timeout-minutes: 30\n", "")
    findings = [f for f in lint(text) if f.rule == "missing-timeout"]
    assert len(findings) == 1
    assert (findings[0].line, findings[0].column) == (11, 3)
    assert "'test'" in findings[0].message


def test_reusable_workflow_call_needs_no_timeout() -> None:
    text = CLEAN + (
        "  call:\n"
        "    uses: org/shared/.github/workflows/x.yml@"
        "11bd71901bbe5b1630ceea73d27597364c9af683 # v1.0.0\n"
        "    permissions:\n      contents: read\n"
    )
    assert "missing-timeout" not in rules(text)


# --- missing-concurrency ---


def test_pull_request_workflow_without_concurrency_is_reported_at_on() -> None:
    text = CLEAN.replace(
        "concurrency:\n  group: ${{ github.workflow }}-${{ github.ref }}\n"
        "  cancel-in-progress: true\n",
        "",
    )
    found = [f for f in lint(text) if f.rule == "missing-concurrency"]
    assert [(f.line, f.column) for f in found] == [(2, 1)]


def test_push_only_workflow_needs_no_concurrency() -> None:
    text = CLEAN.replace("  pull_request:\n", "").replace(
        "concurrency:\n  group: ${{ github.workflow }}-${{ github.ref }}\n"
        "  cancel-in-progress: true\n",
        "",
    )
    assert "missing-concurrency" not in rules(text)


def test_concurrency_on_every_job_is_enough() -> None:
    text = """\
    on: pull_request
    permissions: {}
    jobs:
      a:
        runs-on: ubuntu-latest
        timeout-minutes: 5
        concurrency: a-${{ github.ref }}
        steps:
          - run: "true"
    """
    assert "missing-concurrency" not in rules(text)


def test_on_key_list_form_is_understood() -> None:
    # `on:` parses as the boolean True with PyYAML's loader; the linter must not care.
    text = """\
    on: [push, pull_request]
    permissions: {}
    jobs:
      a:
        runs-on: ubuntu-latest
        timeout-minutes: 5
        steps:
          - run: "true"
    """
    assert rules(text) == ["missing-concurrency"]


# --- unpinned-action and pin-version-comment ---


def test_third_party_action_on_a_tag_is_medium() -> None:
    text = CLEAN + "      - uses: astral-sh/setup-uv@v6\n"
    found = [f for f in lint(text) if f.rule == "unpinned-action"]
    assert len(found) == 1
    assert found[0].severity == "medium" and found[0].line == 25 and found[0].column == 15


def test_github_owned_action_on_a_tag_is_low() -> None:
    text = CLEAN.replace(CHECKOUT, "actions/checkout@v4")
    found = [f for f in lint(text) if f.rule == "unpinned-action"]
    assert [f.severity for f in found] == ["low"]


def test_short_sha_is_not_a_pin() -> None:
    text = CLEAN + "      - uses: astral-sh/setup-uv@abc1234\n"
    assert "unpinned-action" in rules(text)


def test_docker_tag_is_unpinned_and_digest_is_pinned() -> None:
    tag = CLEAN + "      - uses: docker://alpine:3.20\n"
    digest = CLEAN + "      - uses: docker://alpine@sha256:" + "a" * 64 + "\n"
    assert "unpinned-action" in rules(tag)
    assert "unpinned-action" not in rules(digest)


def test_local_action_is_not_checked_for_pinning() -> None:
    assert "unpinned-action" not in rules(CLEAN + "      - uses: ./.github/actions/setup\n")


def test_sha_pin_without_version_comment() -> None:
    bare = CLEAN.replace(" # v5.6.0", "")
    assert rules(bare) == ["pin-version-comment"]
    assert "pin-version-comment" not in rules(CLEAN)


# --- missing-permissions and excessive-permissions ---


def test_no_top_level_permissions_is_reported() -> None:
    text = CLEAN.replace("permissions: {}\n", "").replace(
        "    permissions:\n      contents: read\n", ""
    )
    found = [f for f in lint(text) if f.rule == "missing-permissions"]
    assert len(found) == 1 and found[0].line == 1 and "'test'" in found[0].message


def test_permissions_on_every_job_are_enough() -> None:
    text = CLEAN.replace("permissions: {}\n", "")
    assert "missing-permissions" not in rules(text)


def test_write_all_is_high() -> None:
    text = CLEAN.replace("permissions: {}\n", "permissions: write-all\n")
    found = [f for f in lint(text) if f.rule == "excessive-permissions"]
    assert [(f.severity, f.line) for f in found] == [("high", 6)]


def test_workflow_level_write_scope_is_reported() -> None:
    text = CLEAN.replace("permissions: {}\n", "permissions:\n  contents: write\n  issues: read\n")
    found = [f for f in lint(text) if f.rule == "excessive-permissions"]
    assert len(found) == 1 and "contents: write" in found[0].message and found[0].line == 7


def test_job_write_scope_no_step_can_use_is_reported() -> None:
    text = CLEAN.replace("      contents: read\n", "      contents: read\n      packages: write\n")
    found = [f for f in lint(text) if f.rule == "excessive-permissions"]
    assert len(found) == 1 and "packages: write" in found[0].message


def test_job_write_scope_used_by_a_step_is_fine() -> None:
    text = CLEAN.replace("      contents: read\n", "      contents: write\n") + (
        "      - run: git push origin HEAD\n        env:\n"
        "          GH_TOKEN: ${{ secrets.GITHUB_TOKEN }}\n"
    )
    assert "excessive-permissions" not in rules(text)


def test_job_write_scope_with_an_unknown_action_is_given_the_benefit_of_doubt() -> None:
    text = CLEAN.replace("      contents: read\n", "      pull-requests: write\n") + (
        "      - uses: peter-evans/create-pull-request@"
        "271a8d0340265f705b14b6d32b9829c1cb33d45e # v7.0.8\n"
    )
    assert "excessive-permissions" not in rules(text)


# --- missing-cache ---


def test_setup_python_without_cache() -> None:
    text = CLEAN.replace("          cache: pip\n", "")
    found = [f for f in lint(text) if f.rule == "missing-cache"]
    assert len(found) == 1 and found[0].line == 20 and "cache: pip" in found[0].message


def test_setup_node_without_cache_suggests_npm() -> None:
    text = CLEAN + (
        "      - uses: actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020 # v4.4.0\n"
    )
    found = [f for f in lint(text) if f.rule == "missing-cache"]
    assert len(found) == 1 and "cache: npm" in found[0].message


def test_separate_cache_step_counts_as_caching() -> None:
    text = CLEAN.replace("          cache: pip\n", "") + (
        "      - uses: actions/cache@5a3ec84eff668545956fd18022155c47e93e2684 # v4.2.3\n"
        "        with:\n          path: ~/.cache/pip\n          key: pip\n"
    )
    assert "missing-cache" not in rules(text)


def test_release_workflow_is_not_told_to_cache() -> None:
    # Caches in release workflows are a cache-poisoning risk (zizmor's cache-poisoning).
    text = CLEAN.replace("          cache: pip\n", "").replace(
        "on:\n  push:\n    branches: [main]\n  pull_request:\n", "on:\n  push:\n    tags: ['v*']\n"
    )
    assert "missing-cache" not in rules(text)


# --- untrusted-checkout ---

PR_TARGET = f"""\
on: pull_request_target
permissions: {{}}
concurrency: x-${{{{ github.ref }}}}
jobs:
  label:
    runs-on: ubuntu-latest
    timeout-minutes: 5
    steps:
      - uses: {CHECKOUT}
        with:
          persist-credentials: false
          ref: REF
"""


@pytest.mark.parametrize(
    "ref",
    [
        "${{ github.event.pull_request.head.sha }}",
        "${{ github.head_ref }}",
        "refs/pull/${{ github.event.number }}/merge",
    ],
)
def test_pull_request_target_checking_out_the_head(ref: str) -> None:
    found = [f for f in lint(PR_TARGET.replace("REF", ref)) if f.rule == "untrusted-checkout"]
    assert len(found) == 1 and found[0].severity == "high" and found[0].line == 12


def test_pull_request_target_checking_out_the_base_is_fine() -> None:
    text = PR_TARGET.replace("REF", "${{ github.event.pull_request.base.sha }}")
    assert "untrusted-checkout" not in rules(text)


def test_pull_request_checking_out_the_head_is_fine() -> None:
    text = PR_TARGET.replace("on: pull_request_target", "on: pull_request").replace(
        "REF", "${{ github.event.pull_request.head.sha }}"
    )
    assert "untrusted-checkout" not in rules(text)


def test_workflow_run_fetching_the_pr_in_a_script() -> None:
    text = """\
    on:
      workflow_run:
        workflows: [CI]
        types: [completed]
    permissions: {}
    jobs:
      a:
        runs-on: ubuntu-latest
        timeout-minutes: 5
        steps:
          - run: gh pr checkout 12
            env:
              GH_TOKEN: ${{ github.token }}
    """
    assert "untrusted-checkout" in rules(text)


# --- script-injection ---


def test_pr_title_in_run_block_points_at_the_expression() -> None:
    text = CLEAN + (
        "      - run: |\n          echo ok\n"
        '          echo "${{ github.event.pull_request.title }}"\n'
    )
    found = [f for f in lint(text) if f.rule == "script-injection"]
    assert len(found) == 1
    assert (found[0].line, found[0].column) == (27, 17)
    assert found[0].severity == "high"


def test_head_ref_and_comment_body_in_one_line() -> None:
    text = CLEAN + ("      - run: echo ${{ github.head_ref }} ${{ github.event.comment.body }}\n")
    found = [f for f in lint(text) if f.rule == "script-injection"]
    assert [(f.line, f.column) for f in found] == [(25, 19), (25, 42)]


def test_other_event_fields_are_medium() -> None:
    text = CLEAN + "      - run: echo '${{ github.event.inputs.target }}'\n"
    found = [f for f in lint(text) if f.rule == "script-injection"]
    assert [f.severity for f in found] == ["medium"]


def test_injection_through_env_is_the_fix() -> None:
    text = CLEAN + (
        '      - run: echo "$TITLE"\n        env:\n'
        "          TITLE: ${{ github.event.pull_request.title }}\n"
    )
    assert "script-injection" not in rules(text)


def test_github_script_is_a_script_too() -> None:
    text = CLEAN + (
        "      - uses: actions/github-script@60a0d83039c74a4aee543508d2ffcb1c3799cdea # v7.0.1\n"
        "        with:\n"
        "          script: console.log('${{ github.event.issue.title }}')\n"
    )
    assert "script-injection" in rules(text)


def test_event_name_is_not_the_event_payload() -> None:
    assert "script-injection" not in rules(CLEAN + "      - run: echo ${{ github.event_name }}\n")


# --- checkout-persist-credentials ---


def test_checkout_without_persist_credentials_false() -> None:
    text = CLEAN.replace("        with:\n          persist-credentials: false\n", "")
    found = [f for f in lint(text) if f.rule == "checkout-persist-credentials"]
    assert [(f.line, f.column) for f in found] == [(17, 15)]


def test_checkout_with_persist_credentials_true_is_reported() -> None:
    text = CLEAN.replace("persist-credentials: false", "persist-credentials: true")
    assert "checkout-persist-credentials" in rules(text)


# --- suppression, format, bad input ---


def test_inline_ignore_silences_only_the_named_rule() -> None:
    text = CLEAN + "      - uses: astral-sh/setup-uv@v6 # contexten-lint: ignore[unpinned-action]\n"
    assert rules(text) == []
    other = CLEAN + "      - uses: astral-sh/setup-uv@v6 # contexten-lint: ignore[missing-cache]\n"
    assert rules(other) == ["unpinned-action"]


def test_format_is_linter_style() -> None:
    finding = WorkflowFinding("missing-timeout", "a.yml", 3, 5, "msg", "low")
    assert finding.format() == "a.yml:3:5: missing-timeout: msg"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on: [push\njobs: {}\n", "ci.yml:2:"),
        ("- a\n- b\n", "not a GitHub Actions workflow"),
        ("name: x\n", "expected top-level 'on' and 'jobs'"),
        ("on: push\njobs: [a]\n", "'jobs' must be a mapping"),
        ("", "not a GitHub Actions workflow"),
    ],
)
def test_bad_input_raises_a_one_line_error(text: str, expected: str) -> None:
    with pytest.raises(WorkflowParseError) as info:
        lint_workflow(text, ".github/workflows/ci.yml")
    message = str(info.value)
    assert expected in message and "\n" not in message


def test_oversized_workflow_is_refused() -> None:
    with pytest.raises(WorkflowParseError, match="larger than"):
        lint_workflow("on: push\njobs: {}\n#" + "x" * (1024 * 1024), "big.yml")


def test_alias_bomb_is_bounded() -> None:
    # YAML anchors are legal in workflows; a billion-laughs shape must not blow up.
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        bomb.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    text = "\n".join(bomb) + "\non: push\npermissions: {}\njobs:\n  j:\n    runs-on: x\n"
    text += "    timeout-minutes: 1\n    env: *a8\n    steps:\n      - run: echo\n"
    assert lint_workflow(text, "bomb.yml") == ()


def test_deep_nesting_is_a_parse_error_not_a_crash() -> None:
    text = "on: push\njobs: " + "[" * 50_000 + "]" * 50_000 + "\n"
    with pytest.raises(WorkflowParseError, match=r"nested too deeply|invalid YAML"):
        lint_workflow(text, "deep.yml")
