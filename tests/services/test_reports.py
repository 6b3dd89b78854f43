"""Diagnostic reports: trouble codes described from python-OBD's table, validation with clear
messages, create-then-update, only the session's mechanic, only diagnostic sessions, and the
customer's e-mail (with the PDF) on completion or on a later save. Two saves at once on
Postgres both succeed with one report."""
import io
import random
import threading

import pytest
from pypdf import PdfReader

from autodoctor.extensions import db
from autodoctor.models import DiagnosticReport, OutboxEmail, SessionEvent
from autodoctor.services import lifecycle, reports
from autodoctor.services.errors import Conflict, Forbidden, ValidationError
from tests.factories import AcceptedSessionFactory, UserFactory

GOOD = {
    "findings": "Misfire on cylinder 1 under load; the coil boot is cracked.",
    "verdict": "caution",
    "trouble_codes": ["p0301 ", "P0420"],
    "repairs": [{"description": "Replace ignition coil 1", "low": "$120", "high": "250"},
                {"description": "Spark plugs", "low": "80.50", "high": ""}],
}


def started_session(customer, mechanic, plan_code="diagnostic", go_live=True):
    """A paid session of `plan_code`, accepted by `mechanic`, live once both joined."""
    return AcceptedSessionFactory(customer, mechanic, plan_code, live=go_live).id


def end(session_id, mechanic):
    lifecycle.end_session(session_id, mechanic.id, "See the diagnostic report.")
    db.session.commit()


def outbox(to):
    db.session.expire_all()
    return db.session.scalars(db.select(OutboxEmail).where(OutboxEmail.to_address == to)
                              .order_by(OutboxEmail.id)).all()


@pytest.mark.parametrize("code,description", [
    ("P0301", "Cylinder 1 Misfire Detected"),
    ("P0420", "Catalyst System Efficiency Below Threshold"),
    ("P0171", "System Too Lean"),
    ("P0128", "Coolant Thermostat (Coolant Temperature Below Thermostat Regulating Temperature)"),
    ("P0442", "Evaporative Emission System Leak Detected (small leak)"),
    ("U0100", "Lost Communication With ECM/PCM A"),
    ("U0001", "High Speed CAN Communication Bus"),
])
def test_trouble_codes_get_their_standard_description(code, description):
    assert reports.describe_code(code) == (code, description)


def test_descriptions_match_the_python_obd_table():
    import obd.codes

    sample = random.Random(3).sample(sorted(obd.codes.DTC), 60)
    for code in sample:
        assert reports.describe_code(code.lower()) == (code, obd.codes.DTC[code])


@pytest.mark.parametrize("typed", ["p0301", " P0301 ", "p 0301", "P-0301"])
def test_typed_codes_are_normalised(typed):
    assert reports.describe_code(typed) == ("P0301", "Cylinder 1 Misfire Detected")


@pytest.mark.parametrize("code,description", [
    ("P1234", reports.MANUFACTURER_CODE),   # P1xxx: manufacturer-specific
    ("B1201", reports.MANUFACTURER_CODE),   # body, manufacturer range
    ("C2100", reports.MANUFACTURER_CODE),   # chassis, manufacturer range
    ("C0035", reports.UNLISTED_CODE),       # a generic chassis code the table does not list
])
def test_valid_codes_missing_from_the_table_are_kept_with_a_note(code, description):
    assert reports.describe_code(code) == (code, description)


@pytest.mark.parametrize("typed", ["X0301", "P4301", "P030", "P03011", "P0G01", "0301", "P03O1"])
def test_malformed_codes_are_refused_with_the_expected_format(typed):
    with pytest.raises(ValidationError) as err:
        reports.describe_code(typed)
    assert "is not an OBD-II code" in err.value.message and "like P0301" in err.value.message


def test_lookup_while_typing():
    assert reports.lookup_code("").kind == "empty"
    assert reports.lookup_code("p03").kind == "partial"
    assert reports.lookup_code("P9").kind == "invalid"
    found = reports.lookup_code("p0171")
    assert (found.kind, found.code, found.text) == ("standard", "P0171", "System Too Lean")
    assert reports.lookup_code("P1234").kind == "unlisted"


@pytest.mark.parametrize("typed,cents", [("120", 12000), ("$1,200.50", 120050), (" 80.5 ", 8050), ("0", 0)])
def test_costs_are_parsed_to_cents(typed, cents):
    assert reports.parse_dollars(typed, "low estimate") == cents


@pytest.mark.parametrize("typed", ["abc", "-5", "12.345", "1e3", "NaN", "60000"])
def test_bad_costs_are_refused(typed):
    with pytest.raises(ValidationError):
        reports.parse_dollars(typed, "low estimate")


def test_cost_ranges_read_like_money():
    assert reports.format_range(12000, 25000) == "$120–$250"
    assert reports.format_range(8050, 8050) == "$80.50"
    assert reports.format_range(150000, 325050) == "$1,500–$3,250.50"


def test_findings_and_verdict_are_required_and_every_error_is_reported():
    with pytest.raises(reports.ReportInvalid) as err:
        reports.clean_report({"findings": "  ", "verdict": "maybe", "trouble_codes": ["P0301", "Q1", ""],
                              "repairs": [{"description": "", "low": "10", "high": ""},
                                          {"description": "Brakes", "low": "300", "high": "200"},
                                          {"description": "", "low": "", "high": ""},
                                          {"description": "Tyres", "low": "", "high": ""},
                                          {"description": "Alignment", "low": "ten", "high": "20"}]})
    errors = err.value.errors
    assert errors["findings"] == "Write your findings: what you checked and what you found."
    assert errors["verdict"] == "Choose whether the vehicle is safe to drive."
    assert "“Q1” is not an OBD-II code" in errors["codes-1"]
    assert errors["repairs-0"].startswith("Describe the repair")
    assert errors["repairs-1"] == "The low estimate is more than the high estimate."
    assert errors["repairs-3"].startswith("Give a cost estimate")
    assert errors["repairs-4"] == "Enter the low estimate in dollars, like 120 or 120.50."
    assert set(errors) == {"findings", "verdict", "codes-1", "repairs-0", "repairs-1", "repairs-3", "repairs-4"}


def test_row_limits():
    too_many = dict(GOOD, trouble_codes=[f"P03{n:02d}" for n in range(21)],
                    repairs=[{"description": f"Job {n}", "low": "10", "high": "20"} for n in range(11)])
    with pytest.raises(reports.ReportInvalid) as err:
        reports.clean_report(too_many)
    assert err.value.errors["codes"] == "List at most 20 trouble codes."
    assert err.value.errors["repairs"].startswith("List at most 10 repairs")


def test_blank_rows_are_ignored_and_repeated_codes_kept_once():
    clean = reports.clean_report(dict(GOOD, trouble_codes=["P0301", "", "p0301", "P0420"],
                                      repairs=GOOD["repairs"] + [{"description": " ", "low": "", "high": ""}]))
    assert [c["code"] for c in clean["trouble_codes"]] == ["P0301", "P0420"]
    assert clean["repairs"] == [
        {"description": "Replace ignition coil 1", "low_cents": 12000, "high_cents": 25000},
        {"description": "Spark plugs", "low_cents": 8050, "high_cents": 8050},
    ]


def test_the_mechanic_writes_then_updates_one_report(app, users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id = started_session(customer, mechanic)
    report = reports.save_report(session_id, mechanic.id, GOOD)
    db.session.commit()
    assert report.trouble_codes == [{"code": "P0301", "description": "Cylinder 1 Misfire Detected"},
                                    {"code": "P0420", "description": "Catalyst System Efficiency Below Threshold"}]
    assert report.verdict == "caution" and report.author_id == mechanic.id
    reports.save_report(session_id, mechanic.id, dict(GOOD, verdict="unsafe", trouble_codes=[], repairs=[]))
    db.session.commit()
    rows = db.session.scalars(db.select(DiagnosticReport)).all()
    assert len(rows) == 1 and rows[0].verdict == "unsafe" and rows[0].trouble_codes == []
    details = db.session.scalars(db.select(SessionEvent.detail).where(SessionEvent.kind == "report")).all()
    assert details == ["Diagnostic report written", "Diagnostic report updated"]


def test_only_the_sessions_mechanic_can_write_it(app, users):
    session_id = started_session(users["customer_a"], users["mechanic_a"])
    for intruder in (users["customer_a"], users["mechanic_b"], users["admin"]):
        with pytest.raises(Forbidden, match="Only the session's mechanic"):
            reports.save_report(session_id, intruder.id, GOOD)
        db.session.rollback()
    assert db.session.scalar(db.select(db.func.count(DiagnosticReport.id))) == 0


def test_other_plans_have_no_report(app, users):
    session_id = started_session(users["customer_a"], users["mechanic_a"], "video15")
    with pytest.raises(Conflict, match="only Full Diagnostic sessions"):
        reports.save_report(session_id, users["mechanic_a"].id, GOOD)


def test_no_report_before_the_session_starts(app, users):
    session_id = started_session(users["customer_a"], users["mechanic_a"], go_live=False)
    with pytest.raises(Conflict, match="once the session has started"):
        reports.save_report(session_id, users["mechanic_a"].id, GOOD)


def test_report_written_live_is_emailed_with_the_summary_when_the_session_ends(app, users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id = started_session(customer, mechanic)
    report = reports.save_report(session_id, mechanic.id, GOOD)
    db.session.commit()
    assert [e.subject for e in outbox(customer.email)] == ["Receipt: Full Diagnostic"]  # nothing yet
    end(session_id, mechanic)
    email = outbox(customer.email)[-1]
    assert email.subject == "Your AutoDoctor session summary and diagnostic report"
    assert email.report_id == report.id
    assert "Verdict: Drive with caution." in email.body_text
    assert "P0301  Cylinder 1 Misfire Detected" in email.body_text
    assert "Replace ignition coil 1: $120–$250" in email.body_text and "Total: $200.50–$330.50" in email.body_text
    assert db.session.get(DiagnosticReport, report.id).emailed_at is not None
    assert not any(e.subject == "Your AutoDoctor session summary" for e in outbox(customer.email))


def test_report_written_after_the_session_is_emailed_then_updates_say_so(app, users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id = started_session(customer, mechanic)
    end(session_id, mechanic)
    assert outbox(customer.email)[-1].subject == "Your AutoDoctor session summary"
    reports.save_report(session_id, mechanic.id, GOOD)
    db.session.commit()
    first = outbox(customer.email)[-1]
    assert first.subject == "Your AutoDoctor diagnostic report" and first.report_id
    assert "has written the diagnostic report" in first.body_text
    reports.save_report(session_id, mechanic.id, dict(GOOD, verdict="safe"))
    db.session.commit()
    second = outbox(customer.email)[-1]
    assert second.subject == "Your AutoDoctor diagnostic report (updated)"
    assert "has updated the diagnostic report" in second.body_text and "Verdict: Safe to drive." in second.body_text


def test_a_failed_save_sends_nothing(app, users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id = started_session(customer, mechanic)
    end(session_id, mechanic)
    before = len(outbox(customer.email))
    with pytest.raises(reports.ReportInvalid):
        reports.save_report(session_id, mechanic.id, dict(GOOD, findings=""))
    db.session.rollback()
    assert len(outbox(customer.email)) == before


def test_the_pdf_holds_the_report(app, users):
    customer, mechanic = users["customer_a"], users["mechanic_a"]
    session_id = started_session(customer, mechanic)
    report = reports.save_report(session_id, mechanic.id, GOOD)
    db.session.commit()
    pdf = reports.render_pdf(report)
    assert pdf.startswith(b"%PDF-")
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    for expected in (GOOD["findings"], "Drive with caution", "P0301", "Cylinder 1 Misfire Detected",
                     "$120–$250", "$200.50–$330.50", "2015 Honda Civic", customer.full_name):
        assert expected in text, expected


def test_two_saves_at_once_both_succeed_with_one_report(pg_app):
    """The session row lock serialises them: the second updates what the first created."""
    customer, mechanic = UserFactory("customer"), UserFactory("mechanic")
    db.session.commit()
    session_id = started_session(customer, mechanic)
    end(session_id, mechanic)
    mechanic_id = mechanic.id
    barrier, results = threading.Barrier(2), [None, None]

    def save(i):
        with pg_app.app_context():
            barrier.wait()
            try:
                reports.save_report(session_id, mechanic_id, dict(GOOD, findings=f"Version {i}"))
                db.session.commit()
                results[i] = "ok"
            except Exception as exc:  # noqa: BLE001 - asserted below
                db.session.rollback()
                results[i] = exc
            finally:
                db.session.remove()

    for _ in range(5):
        threads = [threading.Thread(target=save, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == ["ok", "ok"]
    db.session.expire_all()
    assert db.session.scalar(db.select(db.func.count(DiagnosticReport.id))) == 1
    events = db.session.scalars(db.select(SessionEvent.detail).where(SessionEvent.kind == "report")).all()
    assert events.count("Diagnostic report written") == 1 and len(events) == 10
