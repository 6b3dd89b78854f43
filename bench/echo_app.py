"""A bare flask-sock echo server: the floor under the chat round trip. Started by bench/run.py
with the app's own gunicorn.conf.py (gevent worker class, WEB_CONCURRENCY workers)."""
from flask import Flask
from flask_sock import Sock

app = Flask(__name__)
app.config["SOCK_SERVER_OPTIONS"] = {"ping_interval": 25}  # as the app
sock = Sock(app)


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@sock.route("/ws")
def echo(ws):
    while True:
        ws.send(ws.receive())
