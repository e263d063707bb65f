"""A local EventStoreDB-compatible gRPC server, for local work and tests only.

Production uses a real EventStoreDB/KurrentDB cluster. This package is built on the generated
protocol modules that esdbclient ships (``esdbclient.protos.Grpc``); see ``server.EventStoreServer``
and the README next to this file.
"""
