"""The ``event_store.client.gossip.Gossip`` service: a one-node cluster whose leader is this server.

esdbclient reads gossip for ``esdb+discover://`` URIs and for ``esdb://`` URIs naming several hosts,
then connects to the leader's advertised address, so the member must advertise an address clients
can reach (never 0.0.0.0) and the port actually bound.
"""

from __future__ import annotations

import time
import uuid

import grpc
from esdbclient.protos.Grpc import gossip_pb2, gossip_pb2_grpc, shared_pb2


class GossipService(gossip_pb2_grpc.GossipServicer):
    """Answers Read with a single alive Leader member."""

    def __init__(self, advertise_host: str, port: int) -> None:
        self._instance_id = shared_pb2.UUID(string=str(uuid.uuid4()))
        self._endpoint = gossip_pb2.EndPoint(address=advertise_host, port=port)

    def Read(self, request: shared_pb2.Empty, context: grpc.ServicerContext) -> gossip_pb2.ClusterInfo:
        """The cluster as seen by this node: itself, leading."""
        member = gossip_pb2.MemberInfo(
            instance_id=self._instance_id,
            time_stamp=time.time_ns() // 100,
            state=gossip_pb2.MemberInfo.VNodeState.Leader,
            is_alive=True,
            http_end_point=self._endpoint,
        )
        return gossip_pb2.ClusterInfo(members=[member])
