"""The backend for every OpenAI-compatible server, over the ``openai`` SDK.

One class covers the DeepSeek API, vLLM, Ollama, LM Studio, llama.cpp's and
mlx_lm's servers and gateways. What differs is the *flavour*:

* ``deepseek``: thinking via ``thinking: {"type": ...}`` + ``reasoning_effort``
  (always sent, as is ``max_tokens``), ``user_id`` for cache separation, cache
  hits in ``prompt_cache_hit_tokens``. Auto-detected from ``api.deepseek.com``.
* ``vllm``: thinking via ``chat_template_kwargs``; cached tokens in
  ``prompt_tokens_details.cached_tokens``.
* ``generic``: no thinking fields (``extra_body`` in the config can add any).

Reasoning is read from ``delta.reasoning_content`` or ``delta.reasoning``. Usage
is read to ``[DONE]``; when a server sends none (or the stream is cancelled or
cut), the backend yields no ``Usage``: the caller estimates it from the prompt
as it rendered it, chat template included, and marks it estimated.

A stream that ends without a finish reason raises ``Interrupted`` after the
partial text was yielded (the SDK ends such a stream quietly). One request is
one attempt: the caller retries (``app.core.ask.call``) and records every try;
the SDK's own retries are off.

Cancel ends a request within a tenth of a second in every phase: the request
is opened on a short-lived thread while the caller waits on the cancel token
(a server can hold the response headers back for minutes), and once the
stream is open a watcher shuts its socket down, ending a wait for the next
chunk.
"""

from __future__ import annotations

import contextlib
import email.utils
import ipaddress
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from backends import secrets
from backends.base import (
    AuthError,
    Backend,
    BackendError,
    BadRequest,
    Cancelled,
    Capabilities,
    ConnectionLost,
    ContextTooLong,
    Event,
    Finished,
    InsufficientBalance,
    Interrupted,
    ModelNotFound,
    Overloaded,
    RateLimited,
    ReasoningDelta,
    Request,
    ServerError,
    TextDelta,
    Timeout,
    Usage,
)
from backends.settings import Flavour, OpenAISettings

if TYPE_CHECKING:
    import openai
    from openai.types import CompletionUsage

DEFAULT_KEY_ENV = "DEEPSEEK_API_KEY"
_CANCEL_POLL_S = 0.05  # how often a waiting thread looks at the cancel token
INTERRUPTED_MESSAGE = (
    "The connection closed before the answer finished; the partial answer is kept. "
    "Retry to regenerate it."
)
_CONTEXT_RE = re.compile(
    r"maximum context length|context length|context window|too long|context_length_exceeded",
    re.IGNORECASE,
)
_MODEL_RE = re.compile(
    r"model.*(not exist|does not exist|not found|unknown)|no such model|model_not_found",
    re.IGNORECASE,
)


def host_of(base_url: str) -> str:
    host = urlsplit(base_url).hostname
    if not host:
        raise ValueError(f"{base_url!r} is not a URL like https://api.deepseek.com")
    return host.lower()


def is_loopback_host(host: str) -> bool:
    """True for localhost and loopback addresses; names are never resolved."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def detect_flavour(base_url: str) -> Flavour:
    host = host_of(base_url)
    return "deepseek" if host == "deepseek.com" or host.endswith(".deepseek.com") else "generic"


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    message: str
    models: tuple[str, ...] = ()


class OpenAIBackend(Backend):
    """``Backend.stream`` over an OpenAI-compatible chat completions endpoint."""

    def __init__(
        self,
        name: str,
        config: OpenAISettings,
        *,
        user_id: str | None = None,
        api_key: str | None = None,
    ) -> None:
        """``name`` is the backend's name in the config (its keyring entry);
        ``user_id`` is sent as DeepSeek's cache owner; ``api_key`` is for tests."""
        self.config = config
        self.name = name
        self.user_id = user_id
        self._given_key = api_key
        self.host = host_of(config.base_url)
        self.flavour: Flavour = config.flavour or detect_flavour(config.base_url)
        self._client: openai.OpenAI | None = None
        self._key: str | None = None
        self._lock = threading.Lock()
        needs_key = config.needs_key
        if needs_key is None:
            needs_key = self.flavour == "deepseek" or not self.is_loopback
        known = self.flavour != "generic"
        self.capabilities = Capabilities(
            streaming=True,
            reasoning=known,
            server_usage=known,
            cache_usage=known,
            local=self.is_loopback,
            needs_key=needs_key,
        )

    @property
    def is_loopback(self) -> bool:
        """For the offline guard: True only when the server is on this machine."""
        return is_loopback_host(self.host)

    @property
    def _who(self) -> str:
        return "DeepSeek" if self.flavour == "deepseek" else f"The server at {self.config.base_url}"

    def _key_hint(self) -> str:
        """Where this backend's key can go, as it is configured."""
        if self.config.api_key_env:
            return (
                f"run `lectern key set {self.name}` or set the "
                f"{self.config.api_key_env} environment variable"
            )
        return (
            f"run `lectern key set {self.name}`, or export {DEFAULT_KEY_ENV} and add "
            f'`api_key_env = "{DEFAULT_KEY_ENV}"` to [backends.{self.name}] in the config'
        )

    # --- client ------------------------------------------------------------

    def _api_key(self) -> str | None:
        """The configured key. A backend that needs no key (a local server) reads
        only its environment variable, so it never wakes the OS keyring."""
        if self._given_key:
            return self._given_key
        if not self.capabilities.needs_key:
            env = self.config.api_key_env
            return (os.environ.get(env, "").strip() or None) if env else None
        if self._key is None:
            try:
                self._key = secrets.get_key(self.name, self.config.api_key_env)
            except secrets.KeyringUnavailableError as exc:
                raise AuthError(str(exc)) from None
        return self._key

    def _get_client(self) -> openai.OpenAI:
        with self._lock:
            if self._client is None:
                key = self._api_key()
                if key is None and self.capabilities.needs_key:
                    raise AuthError(f"No API key for backend '{self.name}': {self._key_hint()}.")
                import openai

                self._client = openai.OpenAI(
                    base_url=self.config.base_url,
                    api_key=key or "no-key",
                    max_retries=0,
                    timeout=openai.Timeout(
                        self.config.read_timeout, connect=self.config.connect_timeout
                    ),
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # --- requests -------------------------------------------------------------

    def request_body(self, request: Request) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` (for tests and logs).

        The configured ``model`` is the server's id for the model and wins over
        ``request.model`` (the profile id). Earlier turns' reasoning is not sent:
        the V4 template drops it anyway.
        """
        extra: dict[str, Any] = dict(self.config.extra_body)
        if self.flavour == "deepseek":
            extra["thinking"] = {"type": "enabled" if request.mode.thinking else "disabled"}
            if request.mode.thinking:
                extra["reasoning_effort"] = request.mode.value
            if self.user_id:
                extra["user_id"] = self.user_id
        elif self.flavour == "vllm":
            kwargs: dict[str, Any] = {"thinking": request.mode.thinking}
            if request.mode.thinking:
                kwargs["reasoning_effort"] = request.mode.value
            extra["chat_template_kwargs"] = kwargs
        return {
            "model": self.config.model or request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "top_p": request.top_p,
            "extra_body": extra,
        }

    def stream(self, request: Request) -> Iterator[Event]:
        if request.cancel.cancelled:
            raise Cancelled("Cancelled before the request was sent.")
        client = self._get_client()
        import openai

        progress = _Progress()
        body = self.request_body(request)
        try:
            response = _Opening(lambda: client.chat.completions.create(**body)).wait(request)
        except openai.OpenAIError as exc:
            raise self.map_error(exc, progress) from exc
        watcher = _CancelWatcher(request, response)
        finish: str | None = None
        model: str | None = None
        usage: Usage | None = None
        try:
            for chunk in response:
                if request.cancel.cancelled:
                    break
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = self._usage(chunk.usage)
                for choice in chunk.choices[:1]:
                    delta = choice.delta
                    if delta is not None:
                        thought = _reasoning_of(delta)
                        if thought:
                            progress.streamed = True
                            yield ReasoningDelta(thought)
                        if delta.content:
                            progress.streamed = True
                            yield TextDelta(delta.content)
                    if choice.finish_reason:
                        finish = choice.finish_reason
        except openai.OpenAIError as exc:
            if request.cancel.cancelled:
                raise Cancelled("Cancelled; the partial answer is kept.") from None
            raise self.map_error(exc, progress) from exc
        finally:
            watcher.stop()
            response.close()
        if request.cancel.cancelled:
            raise Cancelled("Cancelled; the partial answer is kept.")
        if finish is None:
            raise Interrupted(INTERRUPTED_MESSAGE)
        if usage is not None:
            yield usage
        yield Finished(finish, model)

    # --- usage -------------------------------------------------------------------

    @staticmethod
    def _usage(raw: CompletionUsage) -> Usage:
        extra = raw.model_extra or {}
        prompt = raw.prompt_tokens or 0
        hit = extra.get("prompt_cache_hit_tokens")
        if not isinstance(hit, int):
            details = raw.prompt_tokens_details
            hit = details.cached_tokens if details and details.cached_tokens else 0
        hit = max(0, min(hit, prompt))
        completion = raw.completion_tokens or 0
        cdetails = raw.completion_tokens_details
        thought = cdetails.reasoning_tokens if cdetails and cdetails.reasoning_tokens else 0
        return Usage(prompt, hit, prompt - hit, completion, min(thought, completion))

    # --- errors --------------------------------------------------------------------

    def map_error(self, exc: Exception, progress: _Progress | None = None) -> BackendError:
        """The taxonomy error for an SDK exception, with the server's own words."""
        import openai

        streamed = progress is not None and progress.streamed
        url = self.config.base_url
        if isinstance(exc, openai.APITimeoutError):
            if streamed:
                return Interrupted(
                    f"{self._who} went silent for {self.config.read_timeout:g} s mid-answer; "
                    "the partial answer is kept. Retry to regenerate it."
                )
            return Timeout(
                f"{self._who} did not answer within {self.config.read_timeout:g} s. It may be "
                "overloaded: try again later, or raise read_timeout in the backend's config."
            )
        if isinstance(exc, openai.APIConnectionError):
            if streamed:
                return Interrupted(INTERRUPTED_MESSAGE)
            cause = exc.__cause__ or exc
            return ConnectionLost(
                f"Could not reach {url} ({cause}). Is the server at {url} running? "
                "Check base_url and your network."
            )
        if isinstance(exc, openai.APIStatusError):
            return self._status_error(exc.status_code, _server_message(exc), exc.response.headers)
        if isinstance(exc, openai.APIError):  # an error event inside the stream
            if streamed:
                return Interrupted(
                    f"{self._who} reported an error mid-answer ({exc.message}); the partial "
                    "answer is kept. Retry to regenerate it."
                )
            return ServerError(f"{self._who} reported an error: {exc.message}. Try again.")
        return BackendError(f"{self._who}: {exc}")

    def _status_error(self, status: int, said: str, headers: Mapping[str, str]) -> BackendError:
        who, name = self._who, self.name
        if status in (401, 403):
            return AuthError(
                f"{who} rejected the API key ({status}: {said}). Set a valid key: "
                f"{self._key_hint()}."
            )
        if status == 402:
            return InsufficientBalance(
                f"{who} says the account balance is too low ({said}). Top up at "
                "platform.deepseek.com, or switch to a local backend."
            )
        if status == 429:
            return RateLimited(
                f"{who} is rate limiting requests ({said}). Wait a moment and try again.",
                retry_after=_retry_after(headers),
            )
        if status == 503:
            return Overloaded(f"{who} is overloaded ({said}). Try again in a few minutes.")
        if status >= 500:
            return ServerError(f"{who} had a server error ({status}: {said}). Try again.")
        if _CONTEXT_RE.search(said):
            return ContextTooLong(
                f"The prompt does not fit the model's context window ({said}). Exclude some "
                "documents, or lower max_tokens."
            )
        if status == 404 or _MODEL_RE.search(said):
            if status == 404 and not _MODEL_RE.search(said) and "model" not in said.lower():
                return BadRequest(
                    f"{who} has no chat completions endpoint ({said}). Check base_url "
                    "(OpenAI-compatible servers usually end in /v1)."
                )
            return ModelNotFound(
                f"{who} does not serve the model '{self.config.model}' ({said}). Pick one "
                f"listed by `lectern backends --models` and set it as model in backends.{name}."
            )
        return BadRequest(f"{who} refused the request ({status}: {said}).")

    # --- models and health ------------------------------------------------------------

    def list_models(self) -> list[str]:
        """Model ids from ``GET /models``."""
        import openai

        try:
            return [m.id for m in self._get_client().models.list().data]
        except openai.OpenAIError as exc:
            raise self.map_error(exc) from exc

    def health(self) -> HealthReport:
        """Whether the server answers ``GET /models`` and serves the configured model."""
        try:
            models = tuple(self.list_models())
        except BackendError as err:
            return HealthReport(False, err.message)
        if self.config.model and self.config.model not in models:
            return HealthReport(
                False,
                f"{self._who} is up but does not list the model '{self.config.model}' "
                f"(it lists: {', '.join(models) or 'nothing'}).",
                models,
            )
        return HealthReport(True, f"{self._who} is up.", models)


@dataclass
class _Progress:
    streamed: bool = False  # a reasoning or text delta reached the caller


def _reasoning_of(delta: Any) -> str | None:
    extra = getattr(delta, "model_extra", None) or {}
    for key in ("reasoning_content", "reasoning"):
        value = extra.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err["message"])
        if isinstance(body.get("detail"), str):
            return str(body["detail"])
    if isinstance(body, str) and body:
        return body
    return str(exc.message)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Opening:
    """``create()`` on a short-lived thread, so that waiting for the response headers
    can be cancelled: the SDK call blocks until the server answers, which a busy
    server may put off for minutes. A response that arrives after the caller gave
    up is closed at once."""

    def __init__(self, create: Callable[[], Any]) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._abandoned = False
        self._response: Any = None
        self._error: Exception | None = None
        threading.Thread(target=self._run, args=(create,), daemon=True, name="lectern-open").start()

    def _run(self, create: Callable[[], Any]) -> None:
        try:
            response = create()
        except Exception as exc:  # handed to the waiting thread
            with self._lock:
                self._error = exc
        else:
            with self._lock:
                late = self._abandoned
                if not late:
                    self._response = response
            if late:
                with contextlib.suppress(Exception):
                    response.close()
        finally:
            self._done.set()

    def wait(self, request: Request) -> Any:
        """The response, or the SDK's error; ``Cancelled`` as soon as the request is."""
        try:
            while not self._done.wait(_CANCEL_POLL_S):
                if request.cancel.cancelled:
                    raise Cancelled("Cancelled before the server answered.")
        except BaseException:
            self._abandon()
            raise
        if self._error is not None:
            raise self._error
        if request.cancel.cancelled:
            self._abandon()
            raise Cancelled("Cancelled before the server answered.")
        return self._response

    def _abandon(self) -> None:
        with self._lock:
            self._abandoned = True
            response, self._response = self._response, None
        if response is not None:
            with contextlib.suppress(Exception):
                response.close()


class _CancelWatcher:
    """Shuts the stream's socket down when the request is cancelled.

    A blocked read does not notice ``response.close()`` from another thread, but
    ``shutdown`` ends it at once; the reader then sees the cancel and raises.
    """

    def __init__(self, request: Request, response: Any) -> None:
        self._done = threading.Event()
        self._sock: socket.socket | None = None
        try:
            stream = response.response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
        except (AttributeError, KeyError):
            sock = None
        if isinstance(sock, socket.socket):
            self._sock = sock
            threading.Thread(target=self._run, args=(request,), daemon=True).start()

    def _run(self, request: Request) -> None:
        while not self._done.is_set():
            if request.cancel.wait(_CANCEL_POLL_S):
                if not self._done.is_set() and self._sock is not None:
                    with contextlib.suppress(OSError):
                        self._sock.shutdown(socket.SHUT_RDWR)
                return

    def stop(self) -> None:
        self._done.set()
