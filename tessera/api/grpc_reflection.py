"""gRPC server reflection (`grpc.reflection.v1alpha.ServerReflection`), as Qdrant serves it.

Qdrant registers tonic-reflection's v1alpha service with its descriptor set, advertising
its public services only (`src/tonic/mod.rs`): tools such as grpcurl, grpcui and Postman
list the services and read the messages from the server instead of from .proto files.
The files are those of the generated `qdrant_client.grpc` modules (the protobuf default
pool) and of the standard health service. The reflection protocol's own messages are
built here from their field list: grpcio-reflection is not a dependency.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import grpc
from google.protobuf import (  # type: ignore[import-untyped]  # no stubs installed
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)
from qdrant_client import grpc as pb  # noqa: F401  (loads Qdrant's files into the default pool)

SERVICE = "grpc.reflection.v1alpha.ServerReflection"
METHOD = f"/{SERVICE}/ServerReflectionInfo"
# What Qdrant lists (its `with_service_name` calls), less qdrant.StorageRead, not served.
LISTED = (
    "qdrant.Collections",
    "qdrant.Points",
    "qdrant.Snapshots",
    "qdrant.Qdrant",
    "grpc.health.v1.Health",
)
NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]

_LABEL = descriptor_pb2.FieldDescriptorProto
_T = descriptor_pb2.FieldDescriptorProto


def _field(
    name: str, number: int, kind: int, type_name: str = "", repeated: bool = False, oneof: int = -1
) -> descriptor_pb2.FieldDescriptorProto:
    field = descriptor_pb2.FieldDescriptorProto(
        name=name,
        number=number,
        type=kind,
        label=_LABEL.LABEL_REPEATED if repeated else _LABEL.LABEL_OPTIONAL,
    )
    if type_name:  # set only for a message or enum field (an empty one still counts as set)
        field.type_name = type_name
    if oneof >= 0:
        field.oneof_index = oneof
    return field


def _message(name: str, fields: list[Any], oneof: str = "") -> descriptor_pb2.DescriptorProto:
    message = descriptor_pb2.DescriptorProto(name=name, field=fields)
    if oneof:
        message.oneof_decl.add(name=oneof)
    return message


def _reflection_file() -> descriptor_pb2.FileDescriptorProto:
    """grpc/reflection/v1alpha/reflection.proto, its messages and service."""
    p = ".grpc.reflection.v1alpha."
    s, i32, b, m = _T.TYPE_STRING, _T.TYPE_INT32, _T.TYPE_BYTES, _T.TYPE_MESSAGE
    messages = [
        _message(
            "ServerReflectionRequest",
            [
                _field("host", 1, s),
                _field("file_by_filename", 3, s, oneof=0),
                _field("file_containing_symbol", 4, s, oneof=0),
                _field("file_containing_extension", 5, m, p + "ExtensionRequest", oneof=0),
                _field("all_extension_numbers_of_type", 6, s, oneof=0),
                _field("list_services", 7, s, oneof=0),
            ],
            "message_request",
        ),
        _message(
            "ExtensionRequest",
            [_field("containing_type", 1, s), _field("extension_number", 2, i32)],
        ),
        _message(
            "ServerReflectionResponse",
            [
                _field("valid_host", 1, s),
                _field("original_request", 2, m, p + "ServerReflectionRequest"),
                _field("file_descriptor_response", 4, m, p + "FileDescriptorResponse", oneof=0),
                _field(
                    "all_extension_numbers_response", 5, m, p + "ExtensionNumberResponse", oneof=0
                ),
                _field("list_services_response", 6, m, p + "ListServiceResponse", oneof=0),
                _field("error_response", 7, m, p + "ErrorResponse", oneof=0),
            ],
            "message_response",
        ),
        _message("FileDescriptorResponse", [_field("file_descriptor_proto", 1, b, repeated=True)]),
        _message(
            "ExtensionNumberResponse",
            [_field("base_type_name", 1, s), _field("extension_number", 2, i32, repeated=True)],
        ),
        _message(
            "ListServiceResponse", [_field("service", 1, m, p + "ServiceResponse", repeated=True)]
        ),
        _message("ServiceResponse", [_field("name", 1, s)]),
        _message("ErrorResponse", [_field("error_code", 1, i32), _field("error_message", 2, s)]),
    ]
    return descriptor_pb2.FileDescriptorProto(
        name="reflection.proto",
        package="grpc.reflection.v1alpha",
        syntax="proto3",
        message_type=messages,
    )


def _health_file() -> descriptor_pb2.FileDescriptorProto:
    """grpc/health/v1/health.proto as Qdrant's health_check.proto has it: the Check method
    only (Watch is neither in it nor served)."""
    status = descriptor_pb2.EnumDescriptorProto(name="ServingStatus")
    for number, name in enumerate(("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")):
        status.value.add(name=name, number=number)
    response = _message(
        "HealthCheckResponse",
        [_field("status", 1, _T.TYPE_ENUM, ".grpc.health.v1.HealthCheckResponse.ServingStatus")],
    )
    response.enum_type.append(status)
    service = descriptor_pb2.ServiceDescriptorProto(name="Health")
    service.method.add(
        name="Check",
        input_type=".grpc.health.v1.HealthCheckRequest",
        output_type=".grpc.health.v1.HealthCheckResponse",
    )
    return descriptor_pb2.FileDescriptorProto(
        name="health.proto",
        package="grpc.health.v1",
        syntax="proto3",
        message_type=[
            _message("HealthCheckRequest", [_field("service", 1, _T.TYPE_STRING)]),
            response,
        ],
        service=[service],
    )


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_reflection_file())
_HEALTH = _health_file()
_POOL.Add(_HEALTH)
Request = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionRequest")
)
Response = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("grpc.reflection.v1alpha.ServerReflectionResponse")
)


def _find_file(how: str, name: str) -> Any:
    """The file (descriptor) by file name or by a symbol it defines, in Qdrant's files
    first, then the health file; None when neither has it. A method is looked up by its
    service (upb's pools find messages, enums and services by name, not methods)."""
    names = [name]
    if how == "file_containing_symbol" and "." in name:
        names.append(name.rsplit(".", 1)[0])
    for candidate in names:
        for pool in (descriptor_pool.Default(), _POOL):
            try:
                if how == "file_by_filename":
                    return pool.FindFileByName(candidate)
                return pool.FindFileContainingSymbol(candidate)
            except KeyError:
                continue
    return None


def _with_dependencies(file: Any) -> list[bytes]:
    """`file` and every file it imports, directly or not, serialised (as grpcio's reflection
    answers, so a client needs one round trip)."""
    seen: dict[str, bytes] = {}
    pending = [file]
    while pending:
        current = pending.pop()
        if current.name in seen:
            continue
        proto = descriptor_pb2.FileDescriptorProto()
        current.CopyToProto(proto)
        seen[current.name] = proto.SerializeToString()
        pending.extend(current.dependencies)
    return list(seen.values())


def _answer(request: Any) -> Any:
    response = Response(valid_host=request.host, original_request=request)
    kind = request.WhichOneof("message_request")
    if kind == "list_services":
        for name in LISTED:
            response.list_services_response.service.add(name=name)
    elif kind in ("file_by_filename", "file_containing_symbol"):
        name = getattr(request, kind)
        file = _find_file(kind, name)
        if file is None:
            response.error_response.error_code = NOT_FOUND
            response.error_response.error_message = f"{name} not found"
        else:
            response.file_descriptor_response.file_descriptor_proto.extend(_with_dependencies(file))
    elif kind == "all_extension_numbers_of_type":
        # Qdrant's messages (proto3) declare no extensions.
        response.all_extension_numbers_response.base_type_name = (
            request.all_extension_numbers_of_type
        )
    else:
        response.error_response.error_code = NOT_FOUND
        response.error_response.error_message = "extension not found"
    return response


def reflection_info(requests: Iterable[Any], context: Any) -> Iterator[Any]:
    """One answer per request, in order, for as long as the client streams."""
    for request in requests:
        yield _answer(request)


REFLECTION = grpc.method_handlers_generic_handler(
    SERVICE,
    {
        "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
            reflection_info,
            request_deserializer=Request.FromString,
            response_serializer=Response.SerializeToString,
        )
    },
)
