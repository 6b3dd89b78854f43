"""Mechanic applications: sign-up with credentials, the admin's review, and the approval gate.

A mechanic who signs up is created with `approved = False` and `applied_at` set; their
documents (certificate, insurance, others) are checked by content (services.uploads) before
anything is written, then stored with them as MechanicCredential rows, all in the caller's one
transaction (a rollback removes the stored bytes too). Until an admin approves them they cannot
see or accept requests (services.routing, services.presence, services.lifecycle check
`approved`).

Approve, reject and revoke are guarded UPDATEs on mechanic_profiles (so two admins acting at
once change it once), each writing an audit row with before/after values in the same
transaction, an in-app notice and an e-mail to the mechanic. A rejected (or revoked) mechanic
re-applies by sending new documents, which puts the application back in the queue."""
from dataclasses import dataclass, field

from sqlalchemy import update

from autodoctor import clock
from autodoctor.extensions import db
from autodoctor.models import AuditEntry, MechanicCredential, MechanicProfile, StoredFile, User
from autodoctor.services import accounts, audit, notifications, presence, uploads
from autodoctor.services.errors import Conflict, NotFound, ValidationError
from autodoctor.urls import url

DOCUMENT_KINDS = ("image", "document")  # photos (JPEG, PNG, WebP) up to 10 MB, PDFs up to 25 MB
MAX_OTHER = 5
KIND_LABELS = {"certificate": "Certificate", "insurance": "Insurance", "licence": "Licence", "other": "Other"}
STATUSES = ("pending", "approved", "rejected")
REASON_MAX = 500
AUDIT_FIELDS = ("approved", "reviewed_at", "reviewed_by_id", "rejection_reason")


class ApplicationErrors(ValidationError):
    """Several field errors at once ({field: message})."""

    def __init__(self, errors):
        super().__init__(next(iter(errors.values())), field=next(iter(errors)))
        self.errors = errors


@dataclass
class Documents:
    """Checked uploads, nothing stored yet: (kind, CheckedUpload) pairs."""

    items: list = field(default_factory=list)


def check_documents(certificate, insurance, others, require=True):
    """Check every document by its bytes (nothing stored). Each argument is (name, stream) or
    None; `others` a list of them. Raises ApplicationErrors naming each bad field."""
    errors, docs = {}, Documents()
    wanted = (("certificate", certificate, "Upload your trade certificate (a photo or a PDF)."),
              ("insurance", insurance, "Upload your insurance document (a photo or a PDF)."))
    for kind, upload, missing in wanted:
        if upload is None:
            if require:
                errors[kind] = missing
            continue
        try:
            docs.items.append((kind, _check(*upload)))
        except ValidationError as exc:
            errors[kind] = exc.message
    others = [o for o in others or () if o is not None]
    if len(others) > MAX_OTHER:
        errors["others"] = f"Send at most {MAX_OTHER} other documents."
    else:
        for upload in others:
            try:
                docs.items.append(("other", _check(*upload)))
            except ValidationError as exc:
                errors["others"] = exc.message
                break
    if not require and not docs.items and not errors:
        errors["certificate"] = "Upload at least one new document."
    if errors:
        raise ApplicationErrors(errors)
    return docs


def _check(name, source):
    return uploads.check(name, source, kinds=DOCUMENT_KINDS,
                         wrong_kind="documents must be photos (JPEG, PNG, WebP) or PDFs.")


def store_documents(mechanic_id, docs):
    """Store checked documents as the mechanic's credentials (a rollback removes the bytes)."""
    rows = []
    for kind, upload in docs.items:
        stored = uploads.store(upload, mechanic_id)
        db.session.flush()
        rows.append(MechanicCredential(mechanic_id=mechanic_id, kind=kind, file_id=stored.id))
    db.session.add_all(rows)
    db.session.flush()
    return rows


def apply(email, password, full_name, city, country, profile, docs, now=None):
    """Create the mechanic (role mechanic, not approved, applied now) with their checked
    documents. `profile`: years_experience, red_seal, specialties, brands, bio. The caller commits."""
    now = now or clock.now()
    user = accounts.create_user(email, password, full_name, role="mechanic", city=city or None,
                                country=(country or "").upper() or None)
    mechanic = user.mechanic_profile
    for key in ("years_experience", "red_seal", "specialties", "brands", "bio"):
        if key in profile:
            setattr(mechanic, key, profile[key])
    mechanic.approved = False
    mechanic.applied_at = now
    db.session.flush()
    store_documents(user.id, docs)
    return user


def reapply(mechanic_id, docs, now=None):
    """A mechanic who is not approved sends new documents: a rejected application is pending
    again (a guarded update; an approved mechanic gets Conflict). The caller commits."""
    now = now or clock.now()
    # Still pending: the documents are added and the place in the queue kept; rejected: in the queue again, now.
    keep_place = db.and_(MechanicProfile.rejection_reason.is_(None), MechanicProfile.applied_at.is_not(None))
    done = db.session.execute(
        update(MechanicProfile).where(MechanicProfile.user_id == mechanic_id, MechanicProfile.approved.is_(False))
        .values(rejection_reason=None, reviewed_at=None, reviewed_by_id=None,
                applied_at=db.case((keep_place, MechanicProfile.applied_at), else_=now)),
        execution_options={"synchronize_session": False}).rowcount
    if done != 1:
        raise Conflict("Your application is approved already: there is nothing to send.")
    db.session.expire_all()
    return store_documents(mechanic_id, docs)


# --- the admin's review ----------------------------------------------------------------------

def approve(actor, mechanic_id, now=None):
    """Approve a mechanic who is not approved (pending or rejected)."""
    now = now or clock.now()
    profile = _profile(mechanic_id)
    before = audit.snapshot(profile, *AUDIT_FIELDS)
    _guarded(mechanic_id, False, "This mechanic is approved already.",
             approved=True, reviewed_at=now, reviewed_by_id=actor.id, rejection_reason=None)
    after = audit.snapshot(profile, *AUDIT_FIELDS)
    user = profile.user
    audit.record(actor, "mechanic.approve", "user", mechanic_id, f"Approved mechanic {user.full_name}",
                 *audit.changed(before, after))
    notifications.notify(mechanic_id, "application_approved",
                         "Your application is approved: turn on Taking requests to get requests.",
                         link=url("mechanic.dashboard_index"))
    notifications.queue_email(user.email, "You are approved: start taking requests on AutoDoctor",
                              "emails/application_approved.txt", user=user,
                              dashboard_url=url("mechanic.dashboard_index", _external=True))
    return profile


def reject(actor, mechanic_id, reason, now=None):
    """Reject a mechanic who is not approved, with the reason they will read."""
    reason = _reason(reason)
    now = now or clock.now()
    profile = _profile(mechanic_id)
    before = audit.snapshot(profile, *AUDIT_FIELDS)
    _guarded(mechanic_id, False, "This mechanic is approved already; revoke the approval instead.",
             reviewed_at=now, reviewed_by_id=actor.id, rejection_reason=reason)
    after = audit.snapshot(profile, *AUDIT_FIELDS)
    user = profile.user
    audit.record(actor, "mechanic.reject", "user", mechanic_id, f"Rejected the application of {user.full_name}",
                 *audit.changed(before, after), reason=reason)
    _tell_not_approved(user, reason, "emails/application_rejected.txt",
                       "Your AutoDoctor mechanic application was not approved")
    return profile


def revoke(actor, mechanic_id, reason, now=None):
    """Take an approval back (reason required): the mechanic goes offline at once, no longer
    sees or gets requests, and may re-apply with new documents."""
    reason = _reason(reason)
    now = now or clock.now()
    profile = _profile(mechanic_id)
    before = audit.snapshot(profile, *AUDIT_FIELDS, "online")
    _guarded(mechanic_id, True, "This mechanic is not approved.",
             approved=False, online=False, reviewed_at=now, reviewed_by_id=actor.id, rejection_reason=reason)
    presence.set_online(mechanic_id, False)  # presence offline (announced), the switch off
    after = audit.snapshot(profile, *AUDIT_FIELDS, "online")
    user = profile.user
    audit.record(actor, "mechanic.revoke", "user", mechanic_id, f"Revoked the approval of {user.full_name}",
                 *audit.changed(before, after), reason=reason)
    _tell_not_approved(user, reason, "emails/application_revoked.txt",
                       "Your AutoDoctor approval was withdrawn")
    return profile


def _tell_not_approved(user, reason, template, subject):
    notifications.notify(user.id, "application_rejected", f"Your application needs attention: {reason}",
                         link=url("mechanic.dashboard_index"))
    notifications.queue_email(user.email, subject, template, user=user, reason=reason,
                              dashboard_url=url("mechanic.dashboard_index", _external=True))


def _reason(reason):
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Give the reason: the mechanic reads it.", field="reason")
    if len(reason) > REASON_MAX:
        raise ValidationError(f"Keep the reason under {REASON_MAX} characters.", field="reason")
    return reason


def _profile(mechanic_id):
    profile = db.session.scalar(db.select(MechanicProfile).join(User, User.id == MechanicProfile.user_id)
                                .where(MechanicProfile.user_id == mechanic_id, User.role == "mechanic"))
    if profile is None:
        raise NotFound("That person has no mechanic application.")
    return profile


def _guarded(mechanic_id, approved_now, refusal, **values):
    done = db.session.execute(
        update(MechanicProfile).where(MechanicProfile.user_id == mechanic_id,
                                      MechanicProfile.approved.is_(approved_now)).values(**values),
        execution_options={"synchronize_session": False}).rowcount
    if done != 1:
        raise Conflict(refusal)
    db.session.expire_all()


# --- reading ---------------------------------------------------------------------------------

def status_filter(status):
    """SQL for one application status (MechanicProfile.application_status)."""
    if status == "approved":
        return MechanicProfile.approved.is_(True)
    if status == "rejected":
        return db.and_(MechanicProfile.approved.is_(False), MechanicProfile.rejection_reason.is_not(None))
    return db.and_(MechanicProfile.approved.is_(False), MechanicProfile.rejection_reason.is_(None))


def counts():
    """{status: how many mechanics}, for the tabs."""
    return {status: db.session.scalar(db.select(db.func.count()).select_from(MechanicProfile)
                                      .join(User, User.id == MechanicProfile.user_id)
                                      .where(User.role == "mechanic", status_filter(status)))
            for status in STATUSES}


def list_applications(status="pending", limit=200):
    """(user, profile, document count) rows: pending and rejected oldest application first,
    approved most recently reviewed first. Approved lists only mechanics who applied by sign-up."""
    documents = (db.select(db.func.count(MechanicCredential.id))
                 .where(MechanicCredential.mechanic_id == User.id).correlate(User).scalar_subquery())
    query = (db.select(User, MechanicProfile, documents).join(MechanicProfile, MechanicProfile.user_id == User.id)
             .where(User.role == "mechanic", status_filter(status)))
    if status == "approved":
        query = query.where(MechanicProfile.applied_at.is_not(None)).order_by(
            MechanicProfile.reviewed_at.desc().nulls_last(), User.id.desc())
    else:
        query = query.order_by(MechanicProfile.applied_at.asc().nulls_first(), User.id)
    return db.session.execute(query.limit(limit)).all()


def was_revoked(mechanic_id):
    """Whether the mechanic's last review took an approval back (rather than rejecting an application)."""
    return db.session.scalar(db.select(AuditEntry.action).where(
        AuditEntry.target_type == "user", AuditEntry.target_id == mechanic_id,
        AuditEntry.action.in_(("mechanic.approve", "mechanic.reject", "mechanic.revoke")))
        .order_by(AuditEntry.id.desc()).limit(1)) == "mechanic.revoke"


def credentials_of(mechanic_id):
    return db.session.scalars(db.select(MechanicCredential).where(MechanicCredential.mechanic_id == mechanic_id)
                              .options(db.joinedload(MechanicCredential.file))
                              .order_by(MechanicCredential.id)).all()


def credential_file(credential_id):
    """The stored file of one credential, or NotFound."""
    record = db.session.scalar(db.select(StoredFile).join(MechanicCredential, MechanicCredential.file_id == StoredFile.id)
                               .where(MechanicCredential.id == credential_id))
    if record is None:
        raise NotFound("That document does not exist.")
    return record
