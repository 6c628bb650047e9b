"""Checks every answer of a boto3 CodePipeline client against botocore's model of its output:
the raw JSON, before botocore parses it (parsing drops unknown members and forgives types).

    checker = ShapeChecker(client)   # hooks the client
    ...                              # calls
    checker.assert_clean()           # raises naming each difference

A member the model does not have, a required member missing, a wrong JSON type, a value outside
an enum or a string outside its length bounds is a difference.
"""

import json


class ShapeChecker:
    def __init__(self, client):
        self.model = client.meta.service_model
        self.problems = []
        self.checked = set()
        client.meta.events.register("after-call.codepipeline", self._after_call)
        self._prove_it_can_fail()

    def _prove_it_can_fail(self):
        """A checker that finds nothing wrong in a wrong answer would prove nothing."""
        output = self.model.operation_model("ListPipelines").output_shape
        self._check("ListPipelines", output, {"pipelines": [{"name": 1, "bogus": True}]}, "probe")
        found, self.problems = self.problems, []
        assert len(found) == 2, f"the shape checker missed a difference: {found}"

    def _after_call(self, http_response, parsed, model, **_):
        if http_response.status_code != 200:
            return
        op = model.name
        self.checked.add(op)
        if model.output_shape is None:
            return
        body = http_response.content or b"{}"
        try:
            value = json.loads(body)
        except ValueError:
            self.problems.append(f"{op}: the answer is not JSON: {body[:80]!r}")
            return
        self._check(op, model.output_shape, value, op)

    def _check(self, op, shape, value, path):
        t = shape.type_name
        if t == "structure":
            if not isinstance(value, dict):
                return self._bad(path, f"a structure ({shape.name}), not {type(value).__name__}")
            for key in value:
                if key not in shape.members:
                    self._bad(path, f"has {key!r}, which {shape.name} does not")
            for key in shape.required_members:
                if key not in value:
                    self._bad(path, f"lacks {key!r}, which {shape.name} requires")
            for key, member in shape.members.items():
                if key in value and value[key] is not None:
                    self._check(op, member, value[key], f"{path}.{key}")
        elif t == "list":
            if not isinstance(value, list):
                return self._bad(path, f"a list, not {type(value).__name__}")
            for i, item in enumerate(value):
                self._check(op, shape.member, item, f"{path}[{i}]")
        elif t == "map":
            if not isinstance(value, dict):
                return self._bad(path, f"a map, not {type(value).__name__}")
            for k, v in value.items():
                self._check(op, shape.key, k, f"{path} key")
                self._check(op, shape.value, v, f"{path}[{k!r}]")
        elif t == "string":
            if not isinstance(value, str):
                return self._bad(path, f"a string, not {type(value).__name__} {value!r}")
            if shape.enum and value not in shape.enum:
                self._bad(path, f"{value!r} is not one of {shape.enum}")
            lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
            if lo is not None and len(value) < lo or hi is not None and len(value) > hi:
                self._bad(path, f"{len(value)} characters, not {lo} to {hi}")
        elif t in ("integer", "long"):
            if not isinstance(value, int) or isinstance(value, bool):
                self._bad(path, f"an integer, not {value!r}")
        elif t in ("float", "double"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self._bad(path, f"a number, not {value!r}")
        elif t == "boolean":
            if not isinstance(value, bool):
                self._bad(path, f"a boolean, not {value!r}")
        elif t == "timestamp":
            # JSON 1.1 sends epoch seconds.
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                self._bad(path, f"epoch seconds, not {value!r}")

    def _bad(self, path, what):
        self.problems.append(f"{path}: {what}")

    def assert_clean(self, at_least=1):
        if self.problems:
            raise AssertionError("answers differ from botocore's model:\n" + "\n".join(sorted(set(self.problems))))
        if len(self.checked) < at_least:
            raise AssertionError(f"only {sorted(self.checked)} were checked")
        print(f"shapes: {len(self.checked)} operations answered as botocore's model says: {', '.join(sorted(self.checked))}")
