"""Say why a CI job failed, with the lines that prove it.

    from contexten.analysis.logs import diagnose, diagnose_stream
    diagnosis = diagnose(log_text)                       # str, bytes or a list of lines
    diagnosis = diagnose_stream(chunks)                  # an iterable of bytes/str chunks
    diagnosis = diagnose(fail_text, baseline_logs=[pass_text])   # against passing runs
    diagnosis.to_dict()                                  # JSON-ready
    diagnosis.blocks                                     # the evidence as whole blocks

The evidence is at most 30 lines in blocks, most telling first: each line a rule chose grows
into its explanation (an exception with its frames and `Caused by:` chain, a compiler error
with its excerpt and caret, a test failure with its message), failure lists are taken
whole, and the failing command's last output lines before its exit status join them
(with a passing log: only the lines the passing run does not have). See blocks.py.

Pure code: no I/O, no network, no Prefect. Callers read files or download logs and pass
the bytes in; `diagnose_stream` keeps memory bounded for logs of any size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from contexten.analysis.logs.model import (
    BaselineLog,
    BaselineReport,
    Diagnosis,
    DiagnosisStatus,
    EvidenceLine,
    LineStatus,
    RuleMatch,
)

Chunks = Iterable[bytes | str]
LogInput = str | bytes | Sequence[str]
MAX_BASELINES = 3


def _as_chunks(log: LogInput) -> Chunks:
    if isinstance(log, str | bytes):
        return (log,)
    # A sequence of lines: re-join them the way splitlines() numbered them.
    return ("\n".join(log),)


def diagnose_stream(
    chunks: Chunks,
    *,
    baseline_streams: Sequence[Chunks] = (),
    engine: str | None = None,
) -> Diagnosis:
    """Diagnose a log given as chunks of bytes (or str); memory stays bounded.

    `baseline_streams`: up to three passing logs of the same job, also as chunks. Without
    them the result is exactly the single-log diagnosis.
    """
    from contexten.analysis.logs.engine import diagnose_scan
    from contexten.analysis.logs.scan import LogScanner

    if len(baseline_streams) > MAX_BASELINES:
        raise ValueError(f"at most {MAX_BASELINES} baseline logs, got {len(baseline_streams)}")
    if not baseline_streams:
        return diagnose_scan(LogScanner(engine).scan(chunks))
    from contexten.analysis.logs.baseline import diagnose_with_baseline

    return diagnose_with_baseline(chunks, baseline_streams, engine=engine)


def diagnose(
    log: LogInput,
    *,
    baseline_logs: Sequence[LogInput] = (),
    engine: str | None = None,
) -> Diagnosis:
    """Diagnose a whole log held in memory (str, bytes, or its lines)."""
    return diagnose_stream(
        _as_chunks(log),
        baseline_streams=[_as_chunks(b) for b in baseline_logs],
        engine=engine,
    )


__all__ = [
    "BaselineLog",
    "BaselineReport",
    "Diagnosis",
    "DiagnosisStatus",
    "EvidenceLine",
    "LineStatus",
    "RuleMatch",
    "diagnose",
    "diagnose_stream",
]
