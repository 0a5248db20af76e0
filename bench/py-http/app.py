"""The heavyweight serve benchmark's handler (bench/serve_heavy.py): a wasi:http/proxy component
built by componentize-py, i.e. a whole CPython interpreter in the guest. It answers every request
with a small JSON document about the request."""
import json

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        doc = {"path": request.path_with_query() or "/", "runtime": "componentize-py"}
        body_bytes = json.dumps(doc).encode() + b"\n"
        response = OutgoingResponse(Fields.from_list([("content-type", b"application/json")]))
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        stream = body.write()
        stream.blocking_write_and_flush(body_bytes)
        stream.__exit__(None, None, None)
        OutgoingBody.finish(body, None)
