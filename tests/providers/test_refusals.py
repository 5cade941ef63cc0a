"""Which upstream 4xx are "not here" refusals, on the providers' documented error bodies."""

from __future__ import annotations

import pytest

from tokenlane.providers.refusals import classify_refusal


@pytest.mark.parametrize(("status", "body", "expected"), [
    # OpenAI: max_tokens on a reasoning model.
    (400, {"error": {"message": "Unsupported parameter: 'max_tokens' is not supported with this "
                     "model. Use 'max_completion_tokens' instead.", "type":
                     "invalid_request_error", "param": "max_tokens",
                     "code": "unsupported_parameter"}}, "unsupported_parameter"),
    # Groq's documented 400s.
    (400, {"error": {"message": "'messages.0' : for 'role:user' the following must be "
                     "satisfied[('messages.0.name' : property 'name' is unsupported)]",
                     "type": "invalid_request_error"}}, "unsupported_parameter"),
    (400, {"error": {"message": "'n' : number must be at most 1",
                     "type": "invalid_request_error"}}, "unsupported_parameter"),
    (400, {"error": {"message": "`logprobs` is not supported with this model",
                     "type": "invalid_request_error"}}, "unsupported_parameter"),
    # Cerebras: the error object at the top level.
    (400, {"message": "Response format json_object is not supported for this model",
           "type": "invalid_request_error", "param": "response_format",
           "code": "wrong_api_format"}, "unsupported_parameter"),
    # Retired and unknown models.
    (404, {"message": "Model llama-3.3-70b does not exist or you do not have access to it.",
           "type": "not_found_error", "param": "model", "code": "model_not_found"},
     "model_unavailable"),
    (400, {"error": {"message": "The model `llama3-70b-8192` has been decommissioned and is no "
                     "longer supported.", "type": "invalid_request_error",
                     "code": "model_decommissioned"}}, "model_unavailable"),
    (404, None, "model_unavailable"),
    # The client's own faults go back unchanged.
    (400, {"error": {"message": "This model's maximum context length is 8192 tokens. However, "
                     "your messages resulted in 9000 tokens.", "type": "invalid_request_error",
                     "param": "messages", "code": "context_length_exceeded"}}, None),
    (400, {"error": {"code": 400, "message": "request (3031 tokens) exceeds the available "
                     "context size (1024 tokens), try increasing it",
                     "type": "exceed_context_size_error"}}, None),
    (400, {"error": {"message": "'messages' must contain at least one message",
                     "type": "invalid_request_error"}}, None),
    (401, {"error": {"message": "Invalid API key"}}, None),
    (422, {"detail": [{"msg": "field required"}]}, None),
])
def test_refusals(status, body, expected) -> None:
    assert classify_refusal(status, body) == expected
