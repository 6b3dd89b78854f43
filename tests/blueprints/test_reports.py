"""The report as people meet it: the mechanic's form (field errors, saving over HTMX), the
customer's HTML view and PDF download, links on the summary, who may see what, the code lookup
shown while typing, and the customer's e-mail received by a real SMTP server with the PDF
attached."""
import io
import time

import pytest
from pypdf import PdfReader

from autodoctor.extensions import db
from autodoctor.models import DiagnosticReport
from autodoctor.services import reports
from tests.services.test_reports import GOOD, end, started_session

HX = {"HX-Request": "true"}


def form_data(**overrides):
    data = {"findings": GOOD["findings"], "verdict": GOOD["verdict"], "code": ["p0301", "P0420"],
            "repair_description": ["Replace ignition coil 1", "Spark plugs"],
            "repair_low": ["$120", "80.50"], "repair_high": ["250", ""]}
    data.update(overrides)
    return data


def pdf_text(data):
    return " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def diagnostic(app, users):
    """A live Full Diagnostic session between customer A and mechanic A."""
    return started_session(users["customer_a"], users["mechanic_a"])


@pytest.fixture
def written(diagnostic, users):
    reports.save_report(diagnostic, users["mechanic_a"].id, GOOD)
    db.session.commit()
    return diagnostic


def test_the_room_shows_the_form_to_the_mechanic_only(diagnostic, users, login):
    page = login(users["mechanic_a"]).get(f"/room/{diagnostic}").get_data(as_text=True)
    assert 'id="report-form"' in page and "Safe to drive?" in page and 'id="code-row-template"' in page
    page = login(users["customer_a"]).get(f"/room/{diagnostic}").get_data(as_text=True)
    assert 'id="report-form"' not in page


def test_form_errors_are_shown_beside_the_fields_and_nothing_is_saved(diagnostic, users, login):
    mechanic = login(users["mechanic_a"])
    response = mechanic.post(f"/room/{diagnostic}/report", headers=HX, data=form_data(
        findings="", verdict="", code=["P0301", "Q12"], repair_low=["$120", "lots"]))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<section class="card report-form" id="report-form">')  # the fragment only
    assert "The report was not saved" in html
    assert "Write your findings" in html and "Choose whether the vehicle is safe to drive." in html
    assert "“Q12” is not an OBD-II code" in html
    assert "Enter the high estimate in dollars" not in html and "Enter the low estimate in dollars" in html
    assert 'value="Q12"' in html and 'value="lots"' in html  # what was typed is kept
    assert "Cylinder 1 Misfire Detected" in html  # valid rows keep their description
    assert db.session.scalar(db.select(db.func.count(DiagnosticReport.id))) == 0


def test_saving_over_htmx_returns_the_form_with_a_confirmation(diagnostic, users, login):
    response = login(users["mechanic_a"]).post(f"/room/{diagnostic}/report", headers=HX, data=form_data())
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Report saved. Customer" in html and "when the session ends" in html
    assert 'value="P0301"' in html and "Catalyst System Efficiency Below Threshold" in html
    assert 'value="120"' in html and 'value="80.50"' in html
    assert "Download PDF" in html and "Save changes" in html
    report = db.session.scalar(db.select(DiagnosticReport))
    assert report.repairs[0] == {"description": "Replace ignition coil 1", "low_cents": 12000, "high_cents": 25000}


def test_saving_without_htmx_goes_to_the_report(diagnostic, users, login):
    response = login(users["mechanic_a"]).post(f"/room/{diagnostic}/report", data=form_data())
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/room/{diagnostic}/report")


def test_the_customer_cannot_write_the_report(diagnostic, users, login):
    customer = login(users["customer_a"])
    assert customer.post(f"/room/{diagnostic}/report", headers=HX, data=form_data()).status_code == 403
    assert customer.get(f"/room/{diagnostic}/report/edit").status_code == 403


def test_a_chat_session_has_no_report_form(app, users, login):
    session_id = started_session(users["customer_a"], users["mechanic_a"], "chat10")
    response = login(users["mechanic_a"]).post(f"/room/{session_id}/report", headers=HX, data=form_data())
    assert response.status_code == 409
    assert "only Full Diagnostic sessions" in response.get_data(as_text=True)


def test_the_customer_reads_the_report(written, users, login):
    html = login(users["customer_a"]).get(f"/room/{written}/report").get_data(as_text=True)
    assert 'class="verdict verdict-caution"' in html and "Drive with caution" in html
    assert GOOD["findings"] in html
    assert "P0301" in html and "Cylinder 1 Misfire Detected" in html
    assert "Replace ignition coil 1" in html and "$120–$250" in html and "$80.50" in html
    assert "$200.50–$330.50" in html  # total range
    assert f"/room/{written}/report.pdf" in html and "Edit report" not in html


def test_before_it_is_written_the_page_says_so(diagnostic, users, login):
    html = login(users["customer_a"]).get(f"/room/{diagnostic}/report").get_data(as_text=True)
    assert "The mechanic has not written the report yet." in html
    response = login(users["customer_a"]).get(f"/room/{diagnostic}/report.pdf")
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/room/{diagnostic}/report")


def test_the_pdf_download(written, users, login):
    response = login(users["customer_a"]).get(f"/room/{written}/report.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == f'attachment; filename="autodoctor-report-{written}.pdf"'
    assert response.data.startswith(b"%PDF-")
    text = pdf_text(response.data)
    assert GOOD["findings"] in text and "Cylinder 1 Misfire Detected" in text and "$120–$250" in text


@pytest.mark.parametrize("path", ["report", "report.pdf", "report/edit", "report/code?code=P0301"])
def test_other_users_get_404(written, users, login, path):
    for role in ("customer_b", "mechanic_b"):
        assert login(users[role]).get(f"/room/{written}/{path}").status_code == 404, role


def test_an_admin_can_view_and_download_but_not_edit(written, users, login):
    admin = login(users["admin"])
    assert "Cylinder 1 Misfire Detected" in admin.get(f"/room/{written}/report").get_data(as_text=True)
    assert admin.get(f"/room/{written}/report.pdf").data.startswith(b"%PDF-")
    assert admin.get(f"/room/{written}/report/edit").status_code == 404
    assert admin.post(f"/room/{written}/report", data=form_data()).status_code == 404


@pytest.mark.parametrize("typed,shown", [
    ("p0420", "Catalyst System Efficiency Below Threshold"),
    ("P1234", "No standard description (manufacturer-specific code)"),
    ("P03", "Keep typing"),
    ("Z123", "is not an OBD-II code"),
])
def test_code_lookup_while_typing(diagnostic, users, login, typed, shown):
    response = login(users["mechanic_a"]).get(f"/room/{diagnostic}/report/code", query_string={"code": typed},
                                              headers=HX)
    assert response.status_code == 200 and shown in response.get_data(as_text=True)


def test_summary_links_for_the_customer_and_edit_for_the_mechanic(written, users, login):
    end(written, users["mechanic_a"])
    html = login(users["customer_a"]).get(f"/room/{written}/summary").get_data(as_text=True)
    assert 'id="report-summary"' in html and "Drive with caution" in html
    assert f'href="/room/{written}/report"' in html and f'href="/room/{written}/report.pdf"' in html
    assert "Edit report" not in html
    html = login(users["mechanic_a"]).get(f"/room/{written}/summary").get_data(as_text=True)
    assert f'href="/room/{written}/report/edit"' in html
    edit = login(users["mechanic_a"]).get(f"/room/{written}/report/edit").get_data(as_text=True)
    assert GOOD["findings"] in edit and 'value="P0301"' in edit


def test_summary_shows_the_form_when_the_mechanic_has_not_written_it(diagnostic, users, login):
    end(diagnostic, users["mechanic_a"])
    html = login(users["mechanic_a"]).get(f"/room/{diagnostic}/summary").get_data(as_text=True)
    assert 'id="report-form"' in html and "js/app-2.js" in html
    html = login(users["customer_a"]).get(f"/room/{diagnostic}/summary").get_data(as_text=True)
    assert "The mechanic has not written the report yet." in html and 'id="report-form"' not in html


def wait_for(mailbox, subject, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for message in mailbox:
            if message["Subject"] == subject:
                return message
        time.sleep(0.05)
    raise AssertionError(f"no e-mail {subject!r}; got {[m['Subject'] for m in mailbox]}")


def attachments(message):
    return [(part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
            for part in message.walk() if part.get_content_disposition() == "attachment"]


def test_the_customer_receives_the_report_pdf_by_email(diagnostic, users, login, smtp_server):
    mechanic = login(users["mechanic_a"])
    assert mechanic.post(f"/room/{diagnostic}/report", headers=HX, data=form_data()).status_code == 200
    assert mechanic.post(f"/room/{diagnostic}/end", headers=HX, data={"notes": "Coil 1 is cracked."}).status_code == 204
    message = wait_for(smtp_server, "Your AutoDoctor session summary and diagnostic report")
    assert message["To"] == users["customer_a"].email
    body = next(p for p in message.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert "P0301  Cylinder 1 Misfire Detected" in body and "attached as a PDF" in body
    [(filename, mime, data)] = attachments(message)
    assert (filename, mime) == (f"autodoctor-report-{diagnostic}.pdf", "application/pdf")
    assert data.startswith(b"%PDF-") and GOOD["findings"] in pdf_text(data)

    # An edit after the session is sent again, marked as updated, with the new PDF.
    assert mechanic.post(f"/room/{diagnostic}/report", headers=HX,
                         data=form_data(verdict="unsafe", findings="Coil 1 arcing; do not drive.")).status_code == 200
    message = wait_for(smtp_server, "Your AutoDoctor diagnostic report (updated)")
    [(_, mime, data)] = attachments(message)
    text = pdf_text(data)
    assert mime == "application/pdf" and "Not safe to drive" in text and "Coil 1 arcing; do not drive." in text
