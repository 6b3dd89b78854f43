"""Diagnostic reports: the mechanic's written findings for a `diagnostic` session, OBD-II
trouble codes described from python-OBD's table, repairs with cost ranges, and the PDF the
customer downloads and receives by e-mail."""
import functools
import importlib.util
import logging
import re
from dataclasses import dataclass

from flask import render_template
from sqlalchemy import select

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import ConsultSession, DiagnosticReport
from autodoctor.models.reports import VERDICTS
from autodoctor.offload import off_hub
from autodoctor.services import timeline
from autodoctor.services.errors import Conflict, Forbidden, NotFound, ValidationError

# WeasyPrint logs 7 INFO lines per PDF (and some on import) otherwise.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

MAX_FINDINGS = 5000
MAX_CODES = 20
MAX_REPAIRS = 10
MAX_REPAIR_TEXT = 200
MAX_COST_CENTS = 50_000_00  # a single repair line above $50,000 is a typo, not an estimate
CODE_FORMAT = re.compile(r"[PCBU][0-3][0-9A-F]{3}")
MANUFACTURER_CODE = "No standard description (manufacturer-specific code)"
UNLISTED_CODE = "No standard description in the OBD-II table; check the manufacturer's service information"
REPORT_STATUSES = ("live", "completed")

VERDICT_LABELS = {
    "safe": ("Safe to drive", "No fault found that makes the vehicle unsafe to drive."),
    "caution": ("Drive with caution", "Short trips are OK; get the repairs below done soon."),
    "unsafe": ("Not safe to drive", "Do not drive the vehicle until it is repaired; arrange a tow."),
}


class ReportInvalid(ValidationError):
    """Every problem with a submitted report at once: `errors` maps a field name
    (`findings`, `verdict`, `codes`, `codes-<row>`, `repairs`, `repairs-<row>`) to its message."""

    def __init__(self, errors):
        super().__init__(next(iter(errors.values())), field=next(iter(errors)))
        self.errors = errors


@functools.cache
def _dtc_table():
    """python-OBD's trouble code table (`obd.codes.DTC`). The module is a plain dict with no
    imports, so it is loaded on its own: importing the `obd` package would pull in pint and
    pyserial (~0.3 s) and attach a stderr log handler to the process."""
    package = importlib.util.find_spec("obd")
    path = next(iter(package.submodule_search_locations)) + "/codes.py"
    spec = importlib.util.spec_from_file_location("_autodoctor_obd_codes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DTC


def normalize_code(raw):
    """'p0301 ' -> 'P0301'; spaces and dashes typed inside the code are dropped."""
    return re.sub(r"[\s\-]", "", raw or "").upper()


def _is_manufacturer_specific(code):
    # SAE J2012: P1xxx, P30xx-P33xx and B/C/U 1xxx-2xxx are left to each manufacturer.
    if code[0] == "P":
        return code[1] == "1" or (code[1] == "3" and code[2] in "0123")
    return code[1] in "12"


def describe_code(raw):
    """(code, description) for one typed code; ValidationError if it is not an OBD-II code."""
    code = normalize_code(raw)
    if not CODE_FORMAT.fullmatch(code):
        shown = (raw or "").strip()[:12]
        raise ValidationError(f"“{shown}” is not an OBD-II code: a letter P, C, B or U, then 4 characters "
                              f"(digits or A–F), like P0301.", field="codes")
    description = _dtc_table().get(code)
    if description is None:
        description = MANUFACTURER_CODE if _is_manufacturer_specific(code) else UNLISTED_CODE
    return code, description


@dataclass(frozen=True)
class CodeLookup:
    kind: str  # "empty", "partial" (a valid start, keep typing), "invalid", "standard" or "unlisted"
    code: str = ""
    text: str = ""


_CODE_START = re.compile(r"[PCBU](?:[0-3][0-9A-F]{0,3})?")


def lookup_code(raw):
    """What to show beside a code while the mechanic types it."""
    code = normalize_code(raw)
    if not code:
        return CodeLookup("empty")
    if len(code) < 5 and _CODE_START.fullmatch(code):
        return CodeLookup("partial", code)
    try:
        code, description = describe_code(raw)
    except ValidationError as exc:
        return CodeLookup("invalid", code, exc.message)
    return CodeLookup("standard" if code in _dtc_table() else "unlisted", code, description)


_DOLLARS = re.compile(r"(\d+)(?:\.(\d{1,2}))?|\.(\d{1,2})")


def parse_dollars(raw, label):
    """'$1,200.50' -> 120050 cents; ValidationError with a message naming `label`."""
    text = (raw or "").strip().replace(",", "").replace(" ", "").removeprefix("$")
    match = _DOLLARS.fullmatch(text)
    if match is None:
        raise ValidationError(f"Enter the {label} in dollars, like 120 or 120.50.")
    whole, fraction = match.group(1) or "0", (match.group(2) or match.group(3) or "").ljust(2, "0")
    cents = int(whole) * 100 + int(fraction)
    if cents > MAX_COST_CENTS:
        raise ValidationError(f"The {label} is over ${MAX_COST_CENTS // 100:,}; check the amount.")
    return cents


def format_dollars(cents):
    return f"${cents // 100:,}" if cents % 100 == 0 else f"${cents // 100:,}.{cents % 100:02d}"


def format_range(low_cents, high_cents):
    """$120–$250, or $120 when both ends are the same."""
    if low_cents == high_cents:
        return format_dollars(low_cents)
    return f"{format_dollars(low_cents)}–{format_dollars(high_cents)}"


def _clean_repair(row):
    description = (row.get("description") or "").strip()
    low_raw, high_raw = (row.get("low") or "").strip(), (row.get("high") or "").strip()
    if not description:
        raise ValidationError("Describe the repair, e.g. “Replace spark plugs”.")
    if len(description) > MAX_REPAIR_TEXT:
        raise ValidationError(f"Keep each repair under {MAX_REPAIR_TEXT} characters.")
    if not low_raw and not high_raw:
        raise ValidationError("Give a cost estimate: a low and a high figure, or one figure for a fixed price.")
    low = parse_dollars(low_raw or high_raw, "low estimate")
    high = parse_dollars(high_raw or low_raw, "high estimate")
    if low > high:
        raise ValidationError("The low estimate is more than the high estimate.")
    return {"description": description, "low_cents": low, "high_cents": high}


def clean_report(data):
    """Validate a submitted report; the cleaned fields, or ReportInvalid with every error.

    `data`: findings, verdict, trouble_codes (list of typed codes), repairs (list of dicts with
    description, low, high as typed). Blank rows are ignored; a code given twice is kept once."""
    errors = {}
    findings = (data.get("findings") or "").strip()
    if not findings:
        errors["findings"] = "Write your findings: what you checked and what you found."
    elif len(findings) > MAX_FINDINGS:
        errors["findings"] = f"Findings are limited to {MAX_FINDINGS:,} characters."
    verdict = data.get("verdict") or ""
    if verdict not in VERDICTS:
        errors["verdict"] = "Choose whether the vehicle is safe to drive."

    codes, seen = [], set()
    typed = [(i, raw) for i, raw in enumerate(data.get("trouble_codes") or []) if (raw or "").strip()]
    if len(typed) > MAX_CODES:
        errors["codes"] = f"List at most {MAX_CODES} trouble codes."
    for i, raw in typed:
        try:
            code, description = describe_code(raw)
        except ValidationError as exc:
            errors[f"codes-{i}"] = exc.message
            continue
        if code not in seen:
            seen.add(code)
            codes.append({"code": code, "description": description})

    repairs = []
    rows = [(i, row) for i, row in enumerate(data.get("repairs") or [])
            if any((row.get(key) or "").strip() for key in ("description", "low", "high"))]
    if len(rows) > MAX_REPAIRS:
        errors["repairs"] = f"List at most {MAX_REPAIRS} repairs; group small jobs together."
    for i, row in rows:
        try:
            repairs.append(_clean_repair(row))
        except ValidationError as exc:
            errors[f"repairs-{i}"] = exc.message
    if errors:
        raise ReportInvalid(errors)
    return {"findings": findings, "verdict": verdict, "trouble_codes": codes, "repairs": repairs}


def _session_for_report(session_id, mechanic_id, lock=False):
    query = select(ConsultSession).where(ConsultSession.id == session_id)
    if lock:
        # Serialises with the completion of this session (its guarded UPDATE takes the same row
        # lock) and with a second save: either this save sees "completed" and e-mails the report,
        # or the completion sees this report and attaches it. Two saves never both insert.
        # (Postgres; SQLite, the single-process embedded mode, ignores FOR UPDATE.)
        query = query.with_for_update().execution_options(populate_existing=True)
    session = db.session.scalar(query)
    if session is None:
        raise NotFound("That session does not exist.")
    if session.mechanic_id != mechanic_id:
        raise Forbidden("Only the session's mechanic can write its report.")
    if not session.plan.has_report:
        raise Conflict(f"A {session.plan.name} session has no written report; only Full Diagnostic sessions do.")
    if session.status not in REPORT_STATUSES:
        raise Conflict("The report can be written once the session has started."
                       if session.status in ("scheduled", "pending", "waiting")
                       else "This session was cancelled, so it has no report.")
    return session


def check_can_write(session_id, mechanic_id):
    """The session, if this mechanic may write its report now; ServiceError otherwise."""
    return _session_for_report(session_id, mechanic_id)


def save_report(session_id, mechanic_id, data):
    """Create or update the session's report. A completed session's customer is e-mailed the
    report (with its PDF) on every save; a live session's report goes out when it completes."""
    session = _session_for_report(session_id, mechanic_id, lock=True)
    clean = clean_report(data)
    report = db.session.scalar(select(DiagnosticReport).where(DiagnosticReport.session_id == session_id)
                               .execution_options(populate_existing=True))
    created = report is None
    if created:
        report = DiagnosticReport(session_id=session_id)
        db.session.add(report)
    report.author_id = mechanic_id
    for key, value in clean.items():
        setattr(report, key, value)
    report.updated_at = clock.now()
    db.session.flush()
    timeline.record(session_id, "report", "Diagnostic report written" if created else "Diagnostic report updated",
                    actor_id=mechanic_id)
    if session.status == "completed":
        from autodoctor.services import notifications

        notifications.report_ready(report)
    return report


@dataclass(frozen=True)
class ReportView:
    """What the HTML page, the PDF and the e-mail show, formatted once."""

    report: DiagnosticReport
    session: ConsultSession
    verdict_label: str
    verdict_advice: str
    repairs: list
    total: str | None

    @property
    def codes(self):
        return self.report.trouble_codes


def view(report):
    label, advice = VERDICT_LABELS[report.verdict]
    repairs = [dict(r, cost=format_range(r["low_cents"], r["high_cents"])) for r in report.repairs]
    total = None
    if len(repairs) > 1:
        total = format_range(sum(r["low_cents"] for r in repairs), sum(r["high_cents"] for r in repairs))
    elif repairs:
        total = repairs[0]["cost"]
    return ReportView(report=report, session=report.session, verdict_label=label, verdict_advice=advice,
                      repairs=repairs, total=total)


def pdf_filename(report):
    return f"autodoctor-report-{report.session_id}.pdf"


def _no_fetch(url, *args, **kwargs):
    raise ValueError(f"the report template may not load {url}")


def _write_pdf(html_class, html):
    return html_class(string=html, url_fetcher=_no_fetch).write_pdf()


def render_pdf(report):
    """The report as PDF bytes (rendered now from the print template)."""
    # Imported here, not in the pool's thread: loading WeasyPrint's libraries runs `ldconfig`
    # through gevent's subprocess, which only works on the main loop (once per process).
    from weasyprint import HTML

    html = render_template("room/report_pdf.html", view=view(report))
    return off_hub("pdf", _write_pdf, HTML, html)
