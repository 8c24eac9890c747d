from __future__ import annotations

from compat_matrix.matrix.model import Expectation
from compat_matrix.probe.verdicts import cell_verdict, exit_status, expectation_outcome
from compat_matrix.results import CellResult, ExpectationOutcome, ProbeResult


def _probe(status: str, category: str | None = None, target: str = "m") -> ProbeResult:
    return ProbeResult(
        probe="import",
        target=target,
        status=status,
        category=category,
        message=f"{category} happened",
        hint=f"fix {category}",
    )


def test_all_passing_probes_make_a_passing_cell() -> None:
    verdict = cell_verdict([_probe("pass"), _probe("pass")])
    assert (verdict.status, verdict.category, verdict.gpu_unverified) == ("pass", None, False)


def test_most_specific_cause_wins_over_the_import_error_it_causes() -> None:
    verdict = cell_verdict(
        [
            _probe("fail", "import-error", "pandas"),
            _probe("fail", "abi-numpy", "pandas/_libs/interval.so"),
        ]
    )
    assert verdict.status == "fail"
    assert verdict.category == "abi-numpy"
    assert verdict.message.startswith("pandas/_libs/interval.so: abi-numpy happened")
    assert "(+1 more finding)" in verdict.message
    assert verdict.hint == "fix abi-numpy"


def test_a_real_failure_outranks_a_probe_error() -> None:
    verdict = cell_verdict([_probe("error", "harness"), _probe("fail", "crash")])
    assert (verdict.status, verdict.category) == ("fail", "crash")


def test_probe_error_without_failures_is_an_error_cell() -> None:
    assert cell_verdict([_probe("pass"), _probe("error", "harness")]).status == "error"


def test_gpu_checks_skipped_for_lack_of_a_driver_pass_but_are_marked_unverified() -> None:
    verdict = cell_verdict([_probe("pass"), _probe("skip", "no-gpu")])
    assert (verdict.status, verdict.gpu_unverified) == ("pass", True)


def test_first_matching_expectation_decides() -> None:
    expectations = (
        Expectation(match={"python": "3.13"}, status="unsupported"),
        Expectation(match={"python": "3.13", "numpy": "2"}, status="pass"),
    )
    outcome = expectation_outcome(expectations, {"python": "3.13", "numpy": "2"}, "pass")
    assert outcome == ExpectationOutcome(status="unsupported", met=False)
    assert expectation_outcome(expectations, {"python": "3.12"}, "pass") is None


def _cell(status: str, expected: str | None = None) -> CellResult:
    outcome = ExpectationOutcome(expected, expected == status) if expected else None  # type: ignore[arg-type]
    return CellResult(id=f"c-{status}", axes={}, status=status, expectation=outcome)  # type: ignore[arg-type]


def test_exit_status_contract() -> None:
    assert exit_status([_cell("pass"), _cell("unsupported"), _cell("skip"), _cell("conflict")]) == 0
    assert exit_status([_cell("pass"), _cell("fail")]) == 1
    assert exit_status([_cell("fail", expected="fail")]) == 0
    assert exit_status([_cell("pass", expected="fail")]) == 1
    assert exit_status([_cell("unsupported", expected="pass")]) == 1
    assert exit_status([_cell("error")]) == 3
    assert exit_status([_cell("error"), _cell("fail")]) == 1
    assert exit_status([_cell("error", expected="error")]) == 0


# -- reachability: static findings judged by what the imports loaded ---------------------------


def _static(target: str, category: str, **details: object) -> ProbeResult:
    return ProbeResult(
        probe="abi",
        target=target,
        status="fail",
        category=category,
        message=f"{target}: {category}",
        hint="pin numpy<2",
        details={"path": f"/env/site/{target}", **details},
    )


def _imported(target: str, *loaded: str, status: str = "pass") -> ProbeResult:
    return ProbeResult(
        probe="import",
        target=target,
        status=status,
        category=None if status == "pass" else "abi-numpy",
        details={"loaded": [f"/env/site/{path}" for path in loaded]},
    )


def test_a_finding_on_a_file_the_import_loads_fails_and_names_the_import() -> None:
    verdict = cell_verdict([_static("pkg/_ext.so", "abi-numpy"), _imported("pkg", "pkg/_ext.so")])
    assert (verdict.status, verdict.category) == ("fail", "abi-numpy")
    assert verdict.message == "pkg/_ext.so: abi-numpy (loaded by import pkg)"


def test_without_the_import_measurement_every_static_finding_stands() -> None:
    findings = [_static("pkg/_ext.so", "abi-numpy"), _probe("pass", target="pkg")]
    assert cell_verdict(findings).status == "fail"


def test_after_a_failed_import_findings_are_attributed_not_excused() -> None:
    verdict = cell_verdict(
        [
            _static("a/_never.so", "abi-numpy"),
            _static("b/_ext.so", "abi-numpy"),
            _imported("b", "b/_ext.so", status="fail"),
        ]
    )
    assert verdict.status == "fail"
    assert verdict.message.startswith("b/_ext.so: abi-numpy (loaded by import b)")
    assert {p.target: p.status for p in verdict.probes if p.probe == "abi"} == {
        "a/_never.so": "fail",
        "b/_ext.so": "fail",
    }


def test_a_missing_library_another_import_loads_first_is_latent_and_strict_fails_it() -> None:
    findings = [
        _static(
            "plugin/libp.so",
            "missing-library",
            provided_by=["/env/site/main/libframework.so.2"],
        ),
        _imported("main", "main/_core.so", "main/libframework.so.2"),
    ]
    verdict = cell_verdict(findings)
    assert (verdict.status, verdict.latent) == ("pass", True)
    (latent,) = [p for p in verdict.probes if p.status == "latent"]
    assert "import main loads /env/site/main/libframework.so.2 first" in latent.message
    assert cell_verdict(findings, strict=True).status == "fail"


def test_a_missing_library_no_import_loads_still_fails() -> None:
    findings = [
        _static("plugin/libp.so", "missing-library", provided_by=["/env/site/x/libx.so.1"]),
        _imported("main", "main/_core.so"),
    ]
    assert cell_verdict(findings).category == "missing-library"
