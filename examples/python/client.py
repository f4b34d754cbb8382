#!/usr/bin/env python3
"""A Gongzhi client in pure Python: sign transactions, submit them, ask authorisation questions.

What it does, against a running node (for example a devnet: `gongzhi devnet up`):

1. the dataset owner registers a dataset;
2. another organisation requests access to two of its fields for a purpose;
3. the owner approves the request into a grant;
4. the requester checks "may I?" at least at the height of the approval  -> ALLOW;
5. the owner revokes the grant;
6. the requester checks again at least at the revoking height            -> DENY (REVOKED);
   the printed reason and message come from the node.

Stubs are generated from the repository's .proto files at run time (grpcio-tools), into a
temporary directory. Transactions are signed here, with the operator keys of the devnet:

    tx        = 0x01 || postcard(Tx { body: TxBody, signature: bytes[64] })
    TxBody    = { chain_id: string, signer: [u8; 32], nonce: u64, call: bytes }
    call      = 0x01 || postcard(Call::<variant>)       (the contract call, canonical bytes)
    signature = ed25519 over  len32le(chain_id) || chain_id || len32le(tag) || tag || (0x01 || postcard(TxBody))
    tag       = "gongzhi/tx/v1"

Postcard: unsigned integers are LEB128 varints (except u8: one byte), strings and byte
vectors are a varint length then the bytes, fixed arrays are their bytes, Option is 0 or 1
then the value, an enum is its variant index (varint) then its fields, a struct its fields in
order.

Usage:
    pip install -r examples/python/requirements.txt
    python3 examples/python/client.py --node 127.0.0.1:9090 --keys .devnet/keys
"""

import argparse
import glob
import json
import os
import secrets
import struct
import subprocess
import sys
import tempfile
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TX_TAG = b"gongzhi/tx/v1"
VERSION = b"\x01"


# ---- stubs -------------------------------------------------------------------------------

def load_stubs(proto_dir):
    """Generate Python stubs for gongzhi/v1/*.proto into a temporary directory and import them."""
    out = tempfile.mkdtemp(prefix="gongzhi-stubs-")
    files = sorted(glob.glob(os.path.join(proto_dir, "gongzhi", "v1", "*.proto")))
    if not files:
        sys.exit(f"no .proto files under {proto_dir}/gongzhi/v1")
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", proto_dir,
         f"--python_out={out}", f"--grpc_python_out={out}", *files],
        check=True,
    )
    sys.path.insert(0, out)
    import importlib
    modules = {}
    for name in ["common", "authorization", "ledger", "node", "registry", "civility"]:
        modules[name] = importlib.import_module(f"gongzhi.v1.{name}_pb2")
        modules[name + "_grpc"] = importlib.import_module(f"gongzhi.v1.{name}_pb2_grpc")
    return modules


# ---- postcard ----------------------------------------------------------------------------

def varint(n):
    if n < 0:
        raise ValueError("varints are unsigned")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data, pos=0):
    value, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def string(s):
    raw = s.encode("utf-8")
    return varint(len(raw)) + raw


def byte_vec(b):
    return varint(len(b)) + b


def seq(items, encode):
    return varint(len(items)) + b"".join(encode(i) for i in items)


def option(value, encode):
    return b"\x00" if value is None else b"\x01" + encode(value)


def u8(n):
    return bytes([n])


# Call variants, in declaration order (contracts/src/call.rs); never renumbered.
CALL = {name: index for index, name in enumerate([
    "Propose", "Approve", "RegisterDataset", "RequestAccess", "ApproveRequest", "RejectRequest",
    "IssueGrant", "CoApproveGrant", "DelegateGrant", "RevokeGrant", "RecordUse", "Award", "Redeem",
    "Reverse",
])}
SENSITIVITY = {"public": 0, "internal": 1, "sensitive": 2, "personal": 3}


def register_dataset(dataset_id, name, fields):
    """fields: [(name, sensitivity)]"""
    body = string(dataset_id) + string(name) + seq(
        fields, lambda f: string(f[0]) + varint(SENSITIVITY[f[1]]))
    return VERSION + varint(CALL["RegisterDataset"]) + body


def request_access(dataset, fields, purpose, valid_from_ms, valid_until_ms, justification):
    body = (string(dataset) + seq(fields, string) + string(purpose)
            + varint(valid_from_ms) + varint(valid_until_ms) + string(justification))
    return VERSION + varint(CALL["RequestAccess"]) + body


def approve_request(request_id, max_uses=None, delegation_depth=0, co_approver=None):
    terms = (option(max_uses, varint) + u8(delegation_depth) + option(co_approver, string)
             + option(None, lambda h: h))  # consent hash: none
    return VERSION + varint(CALL["ApproveRequest"]) + varint(request_id) + terms


def revoke_grant(grant_id, reason):
    return VERSION + varint(CALL["RevokeGrant"]) + varint(grant_id) + string(reason)


CALL_OUTPUT = ["Done", "Proposal", "Request", "Grant", "Revoked", "Uses", "Record"]


def call_output(data):
    """Decode the receipt's result (postcard CallOutput) as (kind, number)."""
    index, pos = read_varint(data)
    kind = CALL_OUTPUT[index]
    if kind in ("Request", "Grant", "Revoked", "Uses", "Record"):
        return kind, read_varint(data, pos)[0]
    return kind, None


# ---- keys and transactions ---------------------------------------------------------------

class Signer:
    """An organisation's operator key, from a Gongzhi key file (JSON with hex secret)."""

    def __init__(self, path):
        with open(path) as f:
            doc = json.load(f)
        self.key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(doc["secret_key"]))
        self.public = bytes.fromhex(doc["public_key"])

    def sign_tx(self, chain_id, nonce, call):
        body = string(chain_id) + self.public + varint(nonce) + byte_vec(call)
        chain = chain_id.encode()
        message = (struct.pack("<I", len(chain)) + chain + struct.pack("<I", len(TX_TAG)) + TX_TAG
                   + VERSION + body)
        signature = self.key.sign(message)
        return VERSION + body + byte_vec(signature)


class Client:
    def __init__(self, node, stubs):
        import grpc
        self.grpc = grpc
        self.s = stubs
        channel = grpc.insecure_channel(node)
        self.ledger = stubs["ledger_grpc"].LedgerStub(channel)
        self.auth = stubs["authorization_grpc"].AuthorizationStub(channel)
        self.node = stubs["node_grpc"].NodeStub(channel)
        self.chain_id = self.node.Status(stubs["node"].StatusRequest(), timeout=10).chain_id

    def next_nonce(self, signer):
        answer = self.ledger.GetStateProof(
            self.s["ledger"].GetStateProofRequest(key=b"nonce/" + signer.public), timeout=10)
        last = read_varint(answer.value)[0] if answer.HasField("value") else 0
        return last + 1

    def submit(self, signer, call, what):
        tx = signer.sign_tx(self.chain_id, self.next_nonce(signer), call)
        answer = self.ledger.SubmitTx(
            self.s["ledger"].SubmitTxRequest(tx=tx, wait_for_commit=True), timeout=30)
        receipt = answer.receipt
        if not receipt.success:
            sys.exit(f"{what}: rejected: {receipt.error_name} ({receipt.error_code}): {receipt.error_message}")
        kind, number = call_output(receipt.result)
        print(f"{what}: committed at height {receipt.height}" + (f" -> {kind.lower()}#{number}" if number else ""))
        return receipt.height, number

    def check(self, grantee, dataset, fields, purpose, at_least):
        a = self.s["authorization"]
        c = self.s["common"]
        answer = self.auth.Check(a.CheckRequest(
            grantee_org_id=grantee, dataset_id=dataset, fields=fields, purpose_code=purpose,
            consistency=c.Consistency(at_least_height=at_least)), timeout=10)
        decision = a.Decision.Name(answer.decision).replace("DECISION_", "")
        grants = ", ".join(f"grant#{g}" for g in answer.grant_ids)
        print(f"check {grantee} {dataset} [{','.join(fields)}] {purpose} at >= {at_least}: "
              f"{decision} {answer.reason_name} {grants}".rstrip())
        print(f"    reason: {answer.message}")
        print(f"    evaluated at height {answer.evaluated_height}, state root {answer.state_root.hex()[:16]}..., "
              f"evaluation time {answer.evaluation_time_ms} ms, latest block time {answer.latest_block_time_ms} ms")
        return answer


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node", default="127.0.0.1:9090", help="node gRPC address")
    parser.add_argument("--keys", required=True, help="devnet keys directory (keys/<org>/operator.key)")
    parser.add_argument("--owner", default="yuetan-street", help="organisation owning the new dataset")
    parser.add_argument("--requester", default="health-commission", help="organisation asking for access")
    parser.add_argument("--purpose", default="elderly-care")
    parser.add_argument("--proto", default=os.path.join(REPO, "proto"), help="directory holding gongzhi/v1/*.proto")
    args = parser.parse_args()

    stubs = load_stubs(args.proto)
    client = Client(args.node, stubs)
    owner = Signer(os.path.join(args.keys, args.owner, "operator.key"))
    requester = Signer(os.path.join(args.keys, args.requester, "operator.key"))
    print(f"chain {client.chain_id}: {args.owner} shares data with {args.requester}")

    dataset = "py-" + secrets.token_hex(4)
    now = int(time.time() * 1000)
    fields = ["age", "street"]
    client.submit(owner, register_dataset(dataset, "Python demo dataset", [("age", "internal"), ("street", "public"), ("phone", "personal")]),
                  f"{args.owner} registers {dataset}")
    _, request_id = client.submit(requester, request_access(dataset, fields, args.purpose, now, now + 86_400_000, "Python client demo"),
                                  f"{args.requester} requests access")
    approved_at, grant_id = client.submit(owner, approve_request(request_id, max_uses=100), f"{args.owner} approves request#{request_id}")

    first = client.check(args.requester, dataset, fields, args.purpose, approved_at)
    revoked_at, _ = client.submit(owner, revoke_grant(grant_id, "demo finished"), f"{args.owner} revokes grant#{grant_id}")
    second = client.check(args.requester, dataset, fields, args.purpose, revoked_at)

    allow = stubs["authorization"].DECISION_ALLOW
    ok = first.decision == allow and second.decision != allow and second.reason_name == "REVOKED"
    print("RESULT: " + ("ALLOW before the revocation, REVOKED after it" if ok else "unexpected decisions"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
