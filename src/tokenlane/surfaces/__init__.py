"""Surfaces: the APIs clients speak to us, translated to and from the canonical chat request.

Pure translation, no I/O: a surface turns its request body into an OpenAI chat-completions
body (which `tokenlane.request.chat_request_from_body` then parses for routing), and turns the
engine's chat.completion (or its stream of chunks) back into its own response shape. Planning,
attempts and measurement stay in the engine, so every surface is routed, failed over and
measured the same way.

    messages_*    Anthropic Messages (`POST /v1/messages`)
    responses_*   OpenAI Responses, stateless subset (`POST /v1/responses`)
"""
