from autodoctor.jobs import app_context
from autodoctor.services import payments


@app_context
def refund_payment_job(payment_id, amount_cents, txn_id=None):
    payments.send_refund(payment_id, amount_cents, txn_id)
