"""Blocking calls (Argon2 hashing, WeasyPrint PDFs, photo decoding, copying uploads to disk)
kept off gevent's event loop.

Under gunicorn's gevent worker a call that holds the CPU for a few hundred milliseconds
blocks the hub: every stream and websocket of the process freezes meanwhile. Such calls run
in one native thread per kind and process instead (the hub keeps getting the GIL between
bytecodes, and C code that releases it runs fully in parallel); one thread per kind also
bounds memory (one 64 MiB Argon2 buffer at a time). Outside gevent they run inline."""
import sys

_pools = {}


def off_hub(kind, fn, *args):
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("threading"):
            pool = _pools.get(kind)
            if pool is None:
                from gevent.threadpool import ThreadPool

                pool = _pools[kind] = ThreadPool(1)
            result, error = pool.apply(_outcome, (fn, args))
            if error is not None:
                raise error
            return result
    return fn(*args)


def _outcome(fn, args):
    """Hand an exception (e.g. a refused upload) back to the caller instead of letting the
    pool report it as a crash."""
    try:
        return fn(*args), None
    except Exception as exc:
        return None, exc
