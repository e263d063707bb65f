"""Protocol edges: malformed requests, unimplemented methods, gossip discovery and TLS."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from esdbclient import EventStoreDBClient, NewEvent, StreamState
from esdbclient.protos.Grpc import cluster_pb2_grpc, shared_pb2, streams_pb2, streams_pb2_grpc

from cdr_platform.devstack.eventstore.server import EventStoreServer

pytestmark = pytest.mark.integration


def _append_options(stream: str) -> streams_pb2.AppendReq:
    return streams_pb2.AppendReq(
        options=streams_pb2.AppendReq.Options(
            stream_identifier=shared_pb2.StreamIdentifier(stream_name=stream.encode()), any=shared_pb2.Empty()
        )
    )


def test_malformed_requests_get_invalid_argument_and_the_server_survives(
    channel: grpc.Channel, client: EventStoreDBClient, unique: Callable[[str], str]
) -> None:
    stub = streams_pb2_grpc.StreamsStub(channel)
    bad_uuid = streams_pb2.AppendReq(
        proposed_message=streams_pb2.AppendReq.ProposedMessage(
            id=shared_pb2.UUID(string="not-a-uuid"),
            metadata={"type": "T", "content-type": "application/json"},
        )
    )
    no_type = streams_pb2.AppendReq(
        proposed_message=streams_pb2.AppendReq.ProposedMessage(
            id=shared_pb2.UUID(string="6f9619ff-8b86-d011-b42d-00c04fc964ff")
        )
    )
    cases = [
        lambda: stub.Append(iter([_append_options(unique("bad")), bad_uuid])),
        lambda: stub.Append(iter([_append_options(unique("bad")), no_type])),
        lambda: stub.Append(iter([bad_uuid])),
        lambda: list(stub.Read(streams_pb2.ReadReq())),
        lambda: list(
            stub.Read(
                streams_pb2.ReadReq(
                    options=streams_pb2.ReadReq.Options(
                        all=streams_pb2.ReadReq.Options.AllOptions(start=shared_pb2.Empty()),
                        count=10,
                        filter=streams_pb2.ReadReq.Options.FilterOptions(
                            event_type=streams_pb2.ReadReq.Options.FilterOptions.Expression(
                                regex="(unclosed"
                            ),
                            max=1,
                        ),
                    )
                )
            )
        ),
        lambda: stub.Delete(streams_pb2.DeleteReq()),
    ]
    for call in cases:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
        assert caught.value.details()
    stream = unique("after")
    client.append_to_stream(
        stream, current_version=StreamState.NO_STREAM, events=[NewEvent(type="T", data=b"")]
    )
    assert len(client.get_stream(stream)) == 1


def test_other_services_answer_unimplemented_with_a_message(channel: grpc.Channel) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        cluster_pb2_grpc.GossipStub(channel).Read(shared_pb2.Empty())
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "not implemented by the cdr-platform dev EventStoreDB server" in caught.value.details()


def test_gossip_discovery_and_multi_host_uris(
    esdb_server: EventStoreServer, unique: Callable[[str], str]
) -> None:
    port = esdb_server.port
    stream = unique("gossip")
    with EventStoreDBClient(f"esdb+discover://127.0.0.1:{port}?Tls=false") as discovered:
        members = discovered.read_gossip()
        assert [(m.state, m.address, m.port) for m in members] == [("NODE_STATE_LEADER", "127.0.0.1", port)]
        discovered.append_to_stream(
            stream, current_version=StreamState.NO_STREAM, events=[NewEvent(type="T", data=b"")]
        )
    with EventStoreDBClient(f"esdb://127.0.0.1:{port},localhost:{port}?Tls=false") as multi:
        assert len(multi.get_stream(stream)) == 1


def test_tls_with_a_generated_self_signed_certificate(tmp_path: Path, unique: Callable[[str], str]) -> None:
    with EventStoreServer(port=0, tls_dir=tmp_path / "tls") as server:
        assert "Tls=true" in server.uri and "TlsCaFile=" in server.uri
        with EventStoreDBClient(server.esdbclient_uri, root_certificates=server.root_certificates) as secure:
            stream = unique("tls")
            secure.append_to_stream(
                stream, current_version=StreamState.NO_STREAM, events=[NewEvent(type="T", data=b"")]
            )
            assert [e.stream_name for e in secure.get_stream(stream)] == [stream]
