"""Calendar invites (.ics) for appointments. The UID never changes for an appointment; its
SEQUENCE goes up with every reschedule or cancellation (`appointments.ics_sequence`), so a
calendar updates the event it already has instead of adding a second one."""
from datetime import UTC

from icalendar import Calendar, Event, vCalAddress

from autodoctor import clock
from autodoctor.urls import url


def uid(appointment):
    return f"appointment-{appointment.id}@autodoctor"


def ics(appointment, cancelled=False):
    """The invite as bytes: METHOD:REQUEST, or METHOD:CANCEL for a cancelled appointment."""
    calendar = Calendar()
    calendar.add("prodid", "-//AutoDoctor//Appointments//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "CANCEL" if cancelled else "REQUEST")
    event = Event()
    event.add("uid", uid(appointment))
    event.add("sequence", appointment.ics_sequence)
    event.add("dtstamp", clock.now().replace(tzinfo=UTC))
    event.add("dtstart", appointment.starts_at.replace(tzinfo=UTC))
    event.add("dtend", appointment.ends_at.replace(tzinfo=UTC))
    kind = "in-person visit" if appointment.kind == "in_person" else "online session"
    event.add("summary", f"AutoDoctor {appointment.plan.name} with {appointment.mechanic.full_name} ({kind})")
    event.add("description", "Join from your AutoDoctor appointments page: " + url("public.index", _external=True))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    organizer = vCalAddress("mailto:appointments@autodoctor.example")
    organizer.params["cn"] = "AutoDoctor"
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{appointment.customer.email}")
    attendee.params["cn"] = appointment.customer.full_name
    event.add("attendee", attendee)
    calendar.add_component(event)
    return calendar.to_ical()
