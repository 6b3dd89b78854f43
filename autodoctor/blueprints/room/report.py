"""The diagnostic report: the mechanic's form (room sidebar, summary, edit page), the HTML
view and PDF for the participants and admins, and the trouble code lookup shown while typing."""
from itertools import zip_longest

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from autodoctor import htmx
from autodoctor.blueprints.room import bp
from autodoctor.extensions import db
from autodoctor.models import ConsultSession
from autodoctor.services import reports
from autodoctor.services.errors import ServiceError

WRITE_ONLY_MECHANIC = "Only the session's mechanic can write its report."


def _session(session_id):
    return db.session.get(ConsultSession, session_id)


def _dollars(cents):
    return f"{cents // 100}" if cents % 100 == 0 else f"{cents // 100}.{cents % 100:02d}"


def _typed_code(raw):
    lookup = reports.lookup_code(raw)
    return {"code": raw, "description": lookup.text if lookup.kind in ("standard", "unlisted") else ""}


def report_form_state(session, data=None, errors=None, notice=None):
    """What the form shows: the submitted `data` (kept as typed, with `errors` by field and
    row), else the saved report, else an empty report with one blank row of each kind."""
    report = session.report
    if data is not None:
        findings, verdict = data["findings"], data["verdict"]
        codes = [_typed_code(raw) for raw in data["trouble_codes"]]
        repairs = data["repairs"]
    elif report is not None:
        findings, verdict = report.findings, report.verdict
        codes = [dict(c) for c in report.trouble_codes]
        repairs = [{"description": r["description"], "low": _dollars(r["low_cents"]),
                    "high": _dollars(r["high_cents"])} for r in report.repairs]
    else:
        findings, verdict, codes, repairs = "", "", [], []
    return {"findings": findings, "verdict": verdict, "codes": codes or [{}], "repairs": repairs or [{}],
            "errors": errors or {}, "notice": notice, "max_codes": reports.MAX_CODES,
            "max_repairs": reports.MAX_REPAIRS}


@bp.context_processor
def _report_helpers():
    return {"report_form_state": report_form_state, "verdict_labels": reports.VERDICT_LABELS}


def _submitted(form):
    repairs = [{"description": d or "", "low": lo or "", "high": hi or ""} for d, lo, hi in zip_longest(
        form.getlist("repair_description"), form.getlist("repair_low"), form.getlist("repair_high"))]
    return {"findings": form.get("findings", ""), "verdict": form.get("verdict", ""),
            "trouble_codes": form.getlist("code"), "repairs": repairs}


def _saved_notice(session, created):
    who = session.customer.first_name
    if session.status == "completed":
        return f"Report saved and e-mailed to {who}." if created else \
            f"Changes saved; {who} has been e-mailed the updated report."
    return f"Report saved. {who} will get it by e-mail when the session ends; you can still change it."


@bp.get("/<int:session_id>/report")
def report_show(session_id):
    session = _session(session_id)
    report = session.report
    return render_template("room/report.html", session=session, view=reports.view(report) if report else None)


@bp.get("/<int:session_id>/report.pdf")
def report_pdf(session_id):
    session = _session(session_id)
    if session.report is None:
        flash("There is no report to download yet.", "info")
        return redirect(url_for("room.report_show", session_id=session_id), code=303)
    pdf = reports.render_pdf(session.report)
    return Response(pdf, mimetype="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="{reports.pdf_filename(session.report)}"',
        "Cache-Control": "private, no-store"})


@bp.get("/<int:session_id>/report/edit")
def report_edit(session_id):
    session = _session(session_id)
    if session.mechanic_id != current_user.id:
        abort(403, WRITE_ONLY_MECHANIC)
    try:
        reports.check_can_write(session_id, current_user.id)
    except ServiceError as exc:
        flash(exc.message, "error")
        return redirect(url_for("room.report_show", session_id=session_id), code=303)
    return render_template("room/report_edit.html", session=session)


@bp.post("/<int:session_id>/report")
def report_update(session_id):
    session = _session(session_id)
    if session.mechanic_id != current_user.id:
        abort(403, WRITE_ONLY_MECHANIC)
    data = _submitted(request.form)
    created = session.report is None
    try:
        reports.save_report(session_id, current_user.id, data)
    except ServiceError as exc:
        db.session.rollback()
        errors = exc.errors if isinstance(exc, reports.ReportInvalid) else {"form": exc.message}
        return htmx.render("room/report_edit.html", "room/_report_form.html", status=exc.status_code,
                           session=session, report_form=report_form_state(session, data, errors))
    db.session.commit()
    notice = _saved_notice(session, created)
    if not htmx.is_htmx():
        flash(notice, "success")
        return redirect(url_for("room.report_show", session_id=session_id), code=303)
    return render_template("room/_report_form.html", session=session,
                           report_form=report_form_state(session, notice=notice))


@bp.get("/<int:session_id>/report/code")
def report_code_show(session_id):
    return render_template("room/_report_code.html", lookup=reports.lookup_code(request.args.get("code", "")))
