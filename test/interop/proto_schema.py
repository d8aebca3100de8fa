"""Builds protobuf message classes straight from a .proto file, without protoc or grpc_tools.

Debian's python3-protobuf has no compiler, so this module parses the (proto3) subset the
fedlora wire contract uses -- a package, messages with scalar / message / enum fields,
`repeated`, `oneof`, nested enums, and a service whose RPCs may stream -- into a
FileDescriptorProto, loads it into a private descriptor pool, and returns the message classes
and the service's methods. Anything outside that subset is an error naming the line, so a
change to the .proto that this client does not understand fails loudly instead of silently
mis-encoding.
"""

import re

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_SCALARS = {
    "double": descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
    "float": descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT,
    "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
    "uint64": descriptor_pb2.FieldDescriptorProto.TYPE_UINT64,
    "int32": descriptor_pb2.FieldDescriptorProto.TYPE_INT32,
    "uint32": descriptor_pb2.FieldDescriptorProto.TYPE_UINT32,
    "bool": descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
    "string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
    "bytes": descriptor_pb2.FieldDescriptorProto.TYPE_BYTES,
    "sint32": descriptor_pb2.FieldDescriptorProto.TYPE_SINT32,
    "sint64": descriptor_pb2.FieldDescriptorProto.TYPE_SINT64,
}

_TOKEN = re.compile(r'\s*(?:([A-Za-z_][A-Za-z0-9_.]*)|(\d+)|("[^"]*")|([{}();=<>,\[\]]))')


def _tokens(text):
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    pos, out = 0, []
    while True:
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            if text[pos:].strip():
                raise ValueError(f"proto: cannot tokenize near {text[pos:pos + 40]!r}")
            return out
        out.append(next(g for g in m.groups() if g is not None))
        pos = m.end()


class _Parser:
    def __init__(self, tokens):
        self.t = tokens
        self.i = 0

    def peek(self):
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self, expected=None):
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise ValueError(f"proto: expected {expected!r}, received {tok!r} (token {self.i})")
        self.i += 1
        return tok

    def file(self):
        fd = descriptor_pb2.FileDescriptorProto(name="fedlora_interop.proto", syntax="proto3")
        enum_names = set()
        pending = []  # (field, type name, scope) resolved once every type is known
        while self.peek() is not None:
            tok = self.take()
            if tok == "syntax":
                self.take("=")
                if self.take() != '"proto3"':
                    raise ValueError("proto: only proto3 is supported")
                self.take(";")
            elif tok == "package":
                fd.package = self.take()
                self.take(";")
            elif tok == "message":
                self.message(fd.message_type.add(), "", enum_names, pending)
            elif tok == "service":
                self.service(fd.service.add())
            else:
                raise ValueError(f"proto: unsupported top-level token {tok!r}")
        prefix = f".{fd.package}" if fd.package else ""
        messages = {m.name for m in fd.message_type}
        for field, type_name, scope in pending:
            if f"{scope}.{type_name}" in enum_names:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM
                field.type_name = f"{prefix}.{scope}.{type_name}"
            elif type_name in enum_names:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_ENUM
                field.type_name = f"{prefix}.{type_name}"
            elif type_name in messages:
                field.type = descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE
                field.type_name = f"{prefix}.{type_name}"
            else:
                raise ValueError(f"proto: unknown type {type_name!r} of field {field.name!r}")
        for svc in fd.service:
            for m in svc.method:
                m.input_type = f"{prefix}.{m.input_type}"
                m.output_type = f"{prefix}.{m.output_type}"
        return fd

    def message(self, msg, scope, enum_names, pending):
        msg.name = self.take()
        full = f"{scope}.{msg.name}" if scope else msg.name
        self.take("{")
        while self.peek() != "}":
            tok = self.peek()
            if tok == "enum":
                self.take()
                enum = msg.enum_type.add(name=self.take())
                enum_names.add(f"{full}.{enum.name}")
                self.take("{")
                while self.peek() != "}":
                    name = self.take()
                    self.take("=")
                    enum.value.add(name=name, number=int(self.take()))
                    self.take(";")
                self.take("}")
            elif tok == "oneof":
                self.take()
                index = len(msg.oneof_decl)
                msg.oneof_decl.add(name=self.take())
                self.take("{")
                while self.peek() != "}":
                    self.field(msg, full, pending, oneof_index=index)
                self.take("}")
            else:
                self.field(msg, full, pending)
        self.take("}")

    def field(self, msg, scope, pending, oneof_index=None):
        label = descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL
        if self.peek() == "repeated":
            self.take()
            label = descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED
        type_name = self.take()
        f = msg.field.add(name=self.take(), label=label)
        self.take("=")
        f.number = int(self.take())
        f.json_name = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), f.name)
        self.take(";")
        if oneof_index is not None:
            f.oneof_index = oneof_index
        if type_name in _SCALARS:
            f.type = _SCALARS[type_name]
        else:
            pending.append((f, type_name, scope))

    def service(self, svc):
        svc.name = self.take()
        self.take("{")
        while self.peek() != "}":
            self.take("rpc")
            m = svc.method.add(name=self.take())
            self.take("(")
            if self.peek() == "stream":
                self.take()
                m.client_streaming = True
            m.input_type = self.take()
            self.take(")")
            self.take("returns")
            self.take("(")
            if self.peek() == "stream":
                self.take()
                m.server_streaming = True
            m.output_type = self.take()
            self.take(")")
            self.take(";")
        self.take("}")


def load(proto_path):
    """Returns (package, {message name: class}, {service name: {method name: MethodDescriptorProto}})."""
    with open(proto_path, encoding="utf-8") as fh:
        fd = _Parser(_tokens(fh.read())).file()
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fd)
    file_desc = pool.FindFileByName(fd.name)
    factory = message_factory.MessageFactory(pool)
    classes = {}
    for name, desc in file_desc.message_types_by_name.items():
        get = getattr(message_factory, "GetMessageClass", None)
        classes[name] = get(desc) if get else factory.GetPrototype(desc)
    services = {s.name: {m.name: m for m in s.method} for s in fd.service}
    return fd.package, classes, services
