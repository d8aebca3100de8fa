#!/usr/bin/python3
"""An independent fedlora client in Python: Debian's python3-grpcio + python3-protobuf, the .proto
file, and nothing from the TypeScript code base.

It registers over mTLS, long-polls GetTask, downloads the global adapter stream and checks it
against the plan (layout, offsets, sizes and the adapter SHA-256), uploads an all-zero update in
chunks (round 1 one-shot; later rounds as a resumable, SHA-256-checked upload whose first stream
ends early and is resumed after asking UploadStatus), and carries on until the coordinator says FINISHED. Every request also carries the
signed request envelope (Ed25519 over the canonical JSON array) in gRPC metadata, so it works
whether or not the coordinator verifies per-request signatures.

Prints exactly one JSON document on stdout; diagnostics go to stderr; exits non-zero on any
failure with a message naming what was wrong.
"""

import argparse
import base64
import hashlib
import json
import os
import sys
import time

import grpc
import proto_schema
from ed25519 import SigningKey

TAG = "fedlora/request/v1"
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int32": 4, "uint32": 4, "int8": 1, "uint8": 1}


def log(**fields):
    print(json.dumps({"component": "python-interop", **fields}), file=sys.stderr, flush=True)


class Client:
    def __init__(self, args):
        self.args = args
        pkg, self.pb, services = proto_schema.load(args.proto)
        self.service = f"/{pkg}.Federation"
        with open(args.identity, encoding="utf-8") as fh:
            ident = json.load(fh)
        self.name = ident["name"]
        self.key = SigningKey(base64.b64decode(ident["seed"]), prefer_pure=args.pure_ed25519)
        creds = grpc.ssl_channel_credentials(
            root_certificates=open(args.ca, "rb").read(),
            private_key=open(args.key, "rb").read(),
            certificate_chain=open(args.cert, "rb").read(),
        )
        self.channel = grpc.secure_channel(args.address, creds)
        self.methods = {}
        self.last_status = None
        for name, m in services["Federation"].items():
            req = self.pb[m.input_type.rsplit(".", 1)[-1]]
            res = self.pb[m.output_type.rsplit(".", 1)[-1]]
            kind = ("stream" if m.client_streaming else "unary") + "_" + ("stream" if m.server_streaming else "unary")
            self.methods[name] = getattr(self.channel, kind)(
                f"{self.service}/{name}", request_serializer=lambda msg: msg.SerializeToString(), response_deserializer=res.FromString
            )
            self.methods[name].request_class = req

    def envelope(self, method, round_no, body):
        """The signed request envelope (libs/transport-grpc/src/security/request-signing.ts) and its signature."""
        env = {
            "federationId": self.args.federation,
            "clientName": self.name,
            "round": round_no,
            "method": f"{self.service}/{method}",
            "bodyHash": hashlib.sha256(body).hexdigest(),
            "nonce": os.urandom(16).hex(),
            "timestamp": int(time.time() * 1000),
        }
        fields = [TAG, env["federationId"], env["clientName"], env["round"], env["method"], env["bodyHash"], env["nonce"], env["timestamp"]]
        return env, self.key.sign(json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))

    def metadata(self, method, round_no, body):
        """The envelope as gRPC metadata (security/auth-metadata.ts); the method is not sent."""
        env, signature = self.envelope(method, round_no, body)
        return (
            ("fedlora-federation", env["federationId"]),
            ("fedlora-client", env["clientName"]),
            ("fedlora-round", str(env["round"])),
            ("fedlora-body-sha256", env["bodyHash"]),
            ("fedlora-nonce", env["nonce"]),
            ("fedlora-timestamp", str(env["timestamp"])),
            ("fedlora-signature-bin", signature),
        )

    def unary(self, method, round_no=0, timeout=30, **fields):
        req = self.methods[method].request_class(**fields)
        return self.methods[method](req, metadata=self.metadata(method, round_no, req.SerializeToString()), timeout=timeout)

    def download(self, plan, token, client_id):
        req = self.pb["DownloadRequest"](client_id=client_id, session_token=token, round=plan.round)
        md = self.metadata("DownloadAdapter", plan.round, req.SerializeToString())
        specs = {t.name: t for t in plan.tensors}
        data = {name: bytearray() for name in specs}
        chunks = 0
        for c in self.methods["DownloadAdapter"](req, metadata=md, timeout=60):
            if c.round != plan.round:
                raise RuntimeError(f"chunk round: expected {plan.round}, received {c.round}")
            if c.tensor_name not in specs:
                raise RuntimeError(f"chunk tensor_name: expected one of the plan's tensors, received {c.tensor_name!r}")
            buf = data[c.tensor_name]
            if c.offset != len(buf):
                raise RuntimeError(f"chunk offset of {c.tensor_name}: expected {len(buf)}, received {c.offset}")
            buf.extend(c.data)
            if c.total_bytes != expected_bytes(specs[c.tensor_name]):
                raise RuntimeError(f"total_bytes of {c.tensor_name}: expected {expected_bytes(specs[c.tensor_name])}, received {c.total_bytes}")
            chunks += 1
        for name, spec in specs.items():
            if len(data[name]) != expected_bytes(spec):
                raise RuntimeError(f"tensor {name}: expected {expected_bytes(spec)} bytes, received {len(data[name])}")
        # sha256Named (libs/tensor): for each tensor in sorted name order, "name\0d0,d1\0" then its raw bytes.
        h = hashlib.sha256()
        for name in sorted(specs):
            h.update(f"{name}\0{','.join(str(d) for d in specs[name].shape)}\0".encode("utf-8"))
            h.update(bytes(data[name]))
        if h.hexdigest() != plan.adapter_sha256:
            raise RuntimeError(f"adapter sha256: the plan says {plan.adapter_sha256}, the downloaded stream hashes to {h.hexdigest()}")
        return chunks, sum(len(b) for b in data.values())

    def upload_zero(self, plan, token, client_id, chunk_bytes=64 * 1024, upload_id="", start_at=None, stop_after=None):
        """Streams an all-zero update. With an upload_id the upload is resumable: every chunk carries its
        SHA-256 and each tensor's last chunk the tensor's; `start_at` (tensor -> offset) resumes it and
        `stop_after` ends the stream early after that many chunks (a client that lost its connection)."""
        header = self.pb["UpdateHeader"](
            client_id=client_id, session_token=token, round=plan.round, nonce=plan.nonce, num_examples=self.args.num_examples, train_loss=0.0, metrics_json="{}", upload_id=upload_id
        )
        for t in plan.tensors:
            header.tensors.add(name=t.name, shape=list(t.shape), dtype=t.dtype)
        first = self.pb["UploadMessage"](header=header)
        start_at = start_at or {}

        def messages():
            yield first
            sent = 0
            for t in plan.tensors:
                total = expected_bytes(t)
                for off in range(start_at.get(t.name, 0), total, chunk_bytes):
                    if stop_after is not None and sent >= stop_after:
                        return
                    n = min(chunk_bytes, total - off)
                    hashes = {}
                    if upload_id:
                        hashes["sha256"] = hashlib.sha256(bytes(n)).digest()
                        if off + n == total:
                            hashes["tensor_sha256"] = hashlib.sha256(bytes(total)).digest()
                    yield self.pb["UploadMessage"](chunk=self.pb["TensorChunk"](round=plan.round, tensor_name=t.name, offset=off, total_bytes=total, data=bytes(n), **hashes))
                    sent += 1

        md = self.metadata("UploadUpdate", plan.round, first.SerializeToString())
        return self.methods["UploadUpdate"](messages(), metadata=md, timeout=60)

    def upload_status(self, plan, token, client_id, upload_id):
        return self.unary("UploadStatus", round_no=plan.round, client_id=client_id, session_token=token, round=plan.round, nonce=plan.nonce, upload_id=upload_id)

    def upload_resumable(self, plan, token, client_id):
        """A resumable upload whose first stream ends after 2 chunks: asks UploadStatus and resumes at
        the acknowledged offsets."""
        upload_id = base64.urlsafe_b64encode(os.urandom(16)).decode("ascii").rstrip("=")
        try:
            self.upload_zero(plan, token, client_id, upload_id=upload_id, stop_after=2)
            raise RuntimeError("a resumable upload that ended after 2 chunks was accepted")
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
                raise RuntimeError(f"an upload that ended early: expected INVALID_ARGUMENT (incomplete, kept for a resume), received {err.code().name}: {err.details()}") from None
        states = self.pb["UploadStatusResponse"].State
        st = self.upload_status(plan, token, client_id, upload_id)
        if st.state != states.Value("IN_PROGRESS") or st.received_bytes <= 0:
            raise RuntimeError(f"upload status after a broken stream: expected IN_PROGRESS with bytes received, received state {st.state}, {st.received_bytes} bytes")
        # (No status check afterwards: with a one-client cohort the round closes as soon as the update lands,
        # and the status of a closed round is refused.)
        res = self.upload_zero(plan, token, client_id, upload_id=upload_id, start_at={t.name: t.received_bytes for t in st.tensors})
        return res, st.received_bytes

    def run(self):
        reg = self.unary("Register", client_name=self.name, federation_id=self.args.federation, num_examples=self.args.num_examples)
        log(event="registered", client_id=reg.client_id, signer=self.key.backend)
        kinds = self.pb["GetTaskResponse"]
        rounds = []
        deadline = time.time() + self.args.timeout
        while time.time() < deadline:
            task = self.unary("GetTask", client_id=reg.client_id, session_token=reg.session_token, wait_ms=2000)
            if task.kind == kinds.FINISHED:
                break
            if task.kind != kinds.TRAIN:
                time.sleep(min(task.retry_after_ms, 1000) / 1000 if task.retry_after_ms else 0.2)
                continue
            plan = task.plan
            if any(r["round"] == plan.round for r in rounds):
                time.sleep(0.2)
                continue
            chunks, nbytes = self.download(plan, reg.session_token, reg.client_id)
            beat = self.unary("Heartbeat", round_no=plan.round, client_id=reg.client_id, session_token=reg.session_token, round=plan.round)
            # Round 1 uploads one-shot (the original protocol); later rounds resume a broken upload.
            resumed_at = 0
            if plan.round == 1:
                res = self.upload_zero(plan, reg.session_token, reg.client_id)
            else:
                res, resumed_at = self.upload_resumable(plan, reg.session_token, reg.client_id)
            if not res.accepted:
                raise RuntimeError(f"round {plan.round}: upload not accepted: {res.message}")
            completed = self.wait_round_completed(plan.round)
            rounds.append(
                {"round": plan.round, "completed": completed, "adapterSha256": plan.adapter_sha256, "tensors": len(plan.tensors), "downloadChunks": chunks, "bytes": nbytes, "heartbeatRoundOpen": beat.round_open, "uploadMessage": res.message, "resumedAt": resumed_at}
            )
            log(event="round.uploaded", round=plan.round)
        else:
            raise RuntimeError(f"no FINISHED task within {self.args.timeout} s")
        return {"client": self.name, "clientId": reg.client_id, "signer": self.key.backend, "rounds": rounds, "finished": True, "status": self.last_status}

    def wait_round_completed(self, round_no):
        """Polls GetStatus until the coordinator reports `round_no` finished (before the next GetTask:
        after the last round the coordinator drains its clients and exits once they saw FINISHED)."""
        deadline = time.time() + self.args.timeout
        while time.time() < deadline:
            status = self.unary("GetStatus")
            self.last_status = {"state": status.state, "currentRound": status.current_round, "totalRounds": status.total_rounds, "rounds": json.loads(status.rounds_json or "[]")}
            mine = [r for r in self.last_status["rounds"] if r.get("round") == round_no and r.get("status") != "running"]
            if mine:
                return mine[-1].get("status")
            time.sleep(0.1)
        raise RuntimeError(f"round {round_no}: not reported finished by GetStatus within {self.args.timeout} s")


def expected_bytes(spec):
    if spec.dtype not in DTYPE_BYTES:
        raise RuntimeError(f"dtype of {spec.name}: expected one of {sorted(DTYPE_BYTES)}, received {spec.dtype!r}")
    n = DTYPE_BYTES[spec.dtype]
    for d in spec.shape:
        n *= d
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--address", required=True, help="host:port of the coordinator")
    ap.add_argument("--federation", required=True)
    ap.add_argument("--proto", required=True, help="path of protos/fedlora/v1/federation.proto")
    ap.add_argument("--identity", required=True, help="the institution's Ed25519 identity JSON (name, seed)")
    ap.add_argument("--ca", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--num-examples", type=int, default=100)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--pure-ed25519", action="store_true", help="sign with the pure-Python RFC 8032 code even when python3-cryptography is installed")
    ap.add_argument("--sign-only", metavar="METHOD", help="print the signed envelope of a request with body b'interop' for METHOD at round 7, and exit")
    args = ap.parse_args()
    try:
        if args.sign_only:
            client = Client(args)
            env, signature = client.envelope(args.sign_only, 7, b"interop")
            print(json.dumps({"envelope": env, "signature": signature.hex(), "signer": client.key.backend}))
            return
        print(json.dumps(Client(args).run()))
    except grpc.RpcError as err:
        print(f"interop client: gRPC {err.code().name}: {err.details()}", file=sys.stderr)
        sys.exit(2)
    except Exception as err:  # noqa: BLE001 -- one message, non-zero exit
        print(f"interop client: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
