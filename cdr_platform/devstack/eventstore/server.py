"""EventStoreServer: the local EventStoreDB-compatible gRPC server, for local work and tests only.

Production uses a real EventStoreDB/KurrentDB cluster. This server exists so that the platform's
esdbclient code paths run unchanged against something local: it speaks the EventStoreDB gRPC
protocol through the generated modules esdbclient ships (``esdbclient.protos.Grpc``), for the
Streams, PersistentSubscriptions and Gossip services; every other method answers UNIMPLEMENTED.
There is no authentication: any credentials are accepted and ignored.
"""

from __future__ import annotations

import logging
import socket
import threading
from concurrent import futures
from pathlib import Path
from types import TracebackType

import grpc
from esdbclient.protos.Grpc import gossip_pb2_grpc

from cdr_platform.devstack.eventstore.gossip_service import GossipService
from cdr_platform.devstack.eventstore.persistent import PersistentSubscriptions
from cdr_platform.devstack.eventstore.persistent_service import (
    PersistentSubscriptionsService,
    persistent_method_handlers,
)
from cdr_platform.devstack.eventstore.storage import EventLog, open_journal
from cdr_platform.devstack.eventstore.streams_service import StreamsService, streams_method_handlers
from cdr_platform.devstack.eventstore.tls import ensure_self_signed

log = logging.getLogger(__name__)

MAX_WORKERS = 128
"""Each open subscription holds a worker thread, so the pool is sized for many of them."""
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


class _Unimplemented(grpc.GenericRpcHandler):
    """Answers every method no service claimed with UNIMPLEMENTED and a message saying why."""

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method

        def unimplemented(request: bytes, context: grpc.ServicerContext) -> bytes:
            log.warning("unimplemented method %s called by %s", method, context.peer())
            context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                f"{method} is not implemented by the cdr-platform dev EventStoreDB server "
                "(it serves Streams, PersistentSubscriptions and Gossip only)",
            )
            raise AssertionError("unreachable")

        return grpc.unary_unary_rpc_method_handler(unimplemented)


class _ConnectionLogger(grpc.ServerInterceptor):
    """One log line per new client address, not per call or per event."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        """Log the first call of each connection-name, then pass through."""
        metadata = dict(handler_call_details.invocation_metadata or ())
        name = str(metadata.get("connection-name", "anonymous"))
        with self._lock:
            first = name not in self._seen
            self._seen.add(name)
        if first:
            log.info("client connection %s: first call %s", name, handler_call_details.method)
        return continuation(handler_call_details)


class EventStoreServer:
    """An EventStoreDB-compatible gRPC server on ``host:port`` (port 0 picks a free port).

    ``db_path`` None keeps everything in memory; otherwise events and persistent subscriptions are
    journalled to that SQLite file and reloaded on start. ``tls_dir`` turns TLS on with a
    self-signed certificate kept in that directory. Use as a context manager, or start()/stop().
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 2113,
        db_path: Path | None = None,
        tls_dir: Path | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.db_path = db_path
        self.tls_dir = tls_dir
        self._port: int | None = None
        self._server: grpc.Server | None = None
        self._event_log: EventLog | None = None
        self._groups: PersistentSubscriptions | None = None
        self._cert_path: Path | None = None

    @property
    def port(self) -> int:
        """The port actually bound (only known once started)."""
        if self._port is None:
            raise RuntimeError("EventStoreServer.port is only known after start()")
        return self._port

    @property
    def advertise_host(self) -> str:
        """The address clients should dial: the bind host, or loopback for a wildcard bind."""
        return "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host

    @property
    def uri(self) -> str:
        """Connection string; with TLS it names the CA file (TlsCaFile) as KurrentDB clients read it."""
        base = f"esdb://{self.advertise_host}:{self.port}"
        if self._cert_path is None:
            return f"{base}?Tls=false"
        return f"{base}?Tls=true&TlsCaFile={self._cert_path}"

    @property
    def esdbclient_uri(self) -> str:
        """What esdbclient 1.0.25 accepts: it rejects TlsCaFile and wants credentials with TLS.

        With TLS, pass ``root_certificates=server.root_certificates`` to EventStoreDBClient too.
        """
        if self._cert_path is None:
            return self.uri
        return f"esdb://admin:changeit@{self.advertise_host}:{self.port}?Tls=true"

    @property
    def root_certificates(self) -> str | None:
        """PEM of the self-signed certificate when TLS is on."""
        return self._cert_path.read_text() if self._cert_path is not None else None

    def start(self) -> EventStoreServer:
        """Load the log, bind the port and start serving."""
        if self._server is not None:
            return self
        self._event_log = EventLog(open_journal(self.db_path))
        self._groups = PersistentSubscriptions(self._event_log)
        port = self._requested_port or _free_port(self.host)
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="esdb"),
            interceptors=[_ConnectionLogger()],
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ],
        )
        server.add_generic_rpc_handlers(
            (
                streams_method_handlers(StreamsService(self._event_log)),
                persistent_method_handlers(PersistentSubscriptionsService(self._event_log, self._groups)),
            )
        )
        gossip_pb2_grpc.add_GossipServicer_to_server(GossipService(self.advertise_host, port), server)
        server.add_generic_rpc_handlers((_Unimplemented(),))
        address = f"{self.host}:{port}"
        if self.tls_dir is not None:
            files = ensure_self_signed(self.tls_dir, self.advertise_host)
            credentials = grpc.ssl_server_credentials([(files.key.read_bytes(), files.cert.read_bytes())])
            bound = server.add_secure_port(address, credentials)
            self._cert_path = files.cert
        else:
            bound = server.add_insecure_port(address)
        if bound == 0:
            raise OSError(f"the dev EventStoreDB server could not bind {address}")
        server.start()
        self._server, self._port = server, bound
        log.info("listening on %s (%s)", self.uri, self.db_path or "in memory")
        return self

    def stop(self, grace: float = 0.5) -> None:
        """Stop serving: end subscriptions, then close the journal."""
        if self._server is None:
            return
        if self._groups is not None:
            self._groups.close()
        if self._event_log is not None:
            self._event_log.wake_all()
        self._server.stop(grace).wait()
        if self._event_log is not None:
            self._event_log.journal.close()
        self._server = None

    def __enter__(self) -> EventStoreServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _free_port(host: str) -> int:
    """A port free right now (gRPC's own port 0 would not tell the gossip service in advance)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]
