"""moto's server, with each DynamoDB request applied whole before the next one starts.

DynamoDB applies every request atomically: of two conditional writes racing for one item,
exactly one succeeds, which the state store, the approval links and the action claims rely on
(their contract tests race two writers). moto's threaded server evaluates a condition and writes
the item as separate steps, so under load both writers could win. Holding one lock per DynamoDB
request restores DynamoDB's behaviour; the other services are served as moto serves them.

    python moto-server.py -H HOST -p PORT   (moto_server's own arguments)
"""
import threading

import moto.server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

_dynamodb = threading.Lock()


class AtomicDynamoDB(DomainDispatcherApplication):
    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with _dynamodb:
                return list(super().__call__(environ, start_response))
        return super().__call__(environ, start_response)


moto.server.DomainDispatcherApplication = AtomicDynamoDB

if __name__ == "__main__":
    moto.server.main()
