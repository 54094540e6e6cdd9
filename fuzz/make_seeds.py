#!/usr/bin/env python3
"""Writes the seed corpora of the FuzzedDataProvider-based fuzz targets.

Those targets split their input with FuzzedDataProvider (strings from the
front, integers and booleans from the back), so a meaningful seed has to be
laid out the same way. Each seed below is written as the sequence of values
the target consumes, in the target's order; Fdp encodes them into bytes.
The output is checked in under fuzz/corpus/<target>/; rerun after changing
the order in which a target consumes its input:

    python3 fuzz/make_seeds.py

fuzz_lighthouse_json's corpus is plain JSON and written by hand.
"""
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))


class Fdp:
    """The inverse of LLVM's FuzzedDataProvider (FuzzedDataProvider.h, LLVM 14)."""

    def __init__(self):
        self.front = bytearray()
        self.back = []  # in consumption order; the first is the input's last byte

    def string(self, s):
        """ConsumeRandomLengthString: '\\\\' is one backslash, '\\' + other ends it."""
        b = s.encode() if isinstance(s, str) else bytes(s)
        self.front += b.replace(b"\\", b"\\\\") + b"\\n"
        return self

    def remaining(self, s):
        """ConsumeRemainingBytesAsString: must be the last front value."""
        self.front += s.encode() if isinstance(s, str) else bytes(s)
        return self

    def int_in_range(self, lo, hi, value):
        """ConsumeIntegralInRange<T>(lo, hi) returning `value`."""
        assert lo <= value <= hi
        span, offset, v = hi - lo, 0, value - lo
        nbytes = 0
        while offset < 64 and (span >> offset) > 0:
            nbytes += 1
            offset += 8
        # The first byte consumed is the most significant.
        for i in reversed(range(nbytes)):
            self.back.append((v >> (8 * i)) & 0xFF)
        return self

    def boolean(self, value):
        return self.int_in_range(0, 255, 1 if value else 0)

    def int32(self, value):
        return self.int_in_range(-(2**31), 2**31 - 1, value)

    def size_t(self, value):
        return self.int_in_range(0, 2**64 - 1, value)

    def data(self):
        return bytes(self.front) + bytes(reversed(self.back))


def write(target, name, fdp):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(fdp.data() if isinstance(fdp, Fdp) else fdp)


def reset(target):
    shutil.rmtree(os.path.join(HERE, "corpus", target), ignore_errors=True)


# --- fuzz_sync_request: source, blueprint id, count, destinations ----------
REGIONS = ["ap-bangkok", "ap-beijing", "ap-chengdu", "ap-guangzhou", "ap-hongkong", "ap-jakarta",
           "ap-nanjing", "ap-seoul", "ap-shanghai", "ap-singapore", "ap-tokyo", "eu-frankfurt",
           "na-ashburn", "na-siliconvalley", "sa-saopaulo"]


def sync_request(source, blueprint_id, destinations):
    f = Fdp()

    def region(r):
        if r in REGIONS:
            f.boolean(True).int_in_range(0, len(REGIONS) - 1, REGIONS.index(r))
        else:
            f.boolean(False).string(r)

    region(source)
    f.boolean(True).string(blueprint_id)  # the 64-byte-limit branch
    f.int_in_range(0, 16, len(destinations))
    for d in destinations:
        region(d)
    return f


def sync_request_seeds():
    t = "fuzz_sync_request"
    reset(t)
    write(t, "valid_doc_example", sync_request("ap-guangzhou", "lhbp-ls883feh",
                                               ["ap-beijing", "ap-shanghai"]))
    write(t, "valid_overseas", sync_request("ap-singapore", "lhbp-0a1b2c3d",
                                            ["ap-hongkong", "ap-tokyo", "eu-frankfurt"]))
    write(t, "cross_border", sync_request("ap-guangzhou", "lhbp-ls883feh",
                                          ["ap-singapore", "ap-hongkong"]))
    write(t, "same_as_source_and_duplicate",
          sync_request("ap-tokyo", "lhbp-ls883feh", ["ap-tokyo", "ap-seoul", "ap-seoul"]))
    write(t, "unknown_regions", sync_request("ap-mumbai", "lhbp-ls883feh",
                                             ["na-toronto", "AP-SINGAPORE", " ap-tokyo"]))
    write(t, "malformed_ids", sync_request("ap-seoul", "LHBP-LS883FEH", ["ap-tokyo"]))
    write(t, "id_too_long", sync_request("ap-seoul", "lhbp-ls883feh0", ["ap-tokyo"]))
    write(t, "empty_everything", sync_request("", "", []))
    write(t, "too_many", sync_request("ap-singapore", "lhbp-ls883feh",
                                      [r for r in REGIONS if r != "ap-singapore"][:11]))
    write(t, "control_bytes", sync_request("ap-\x1b[31mred\x00", "lhbp-\xff\xfe\n\t\"\\x",
                                           ["\x7f" * 80]))


# --- fuzz_flags: env values, argc, args -----------------------------------
FLAG_SPECS = ["listen", "poll-interval", "sync-rate", "workers", "log-level", "store", "help"]
ENV_FLAGS = ["listen", "poll-interval", "sync-rate", "workers", "log-level"]


def flags(env, args):
    f = Fdp()
    for name in ENV_FLAGS:
        if name in env:
            f.boolean(True).string(env[name])
        else:
            f.boolean(False)
    f.int_in_range(0, 12, len(args))
    for a in args:
        kind = a[0]
        if kind == "raw":
            f.int_in_range(0, 6, 0).int_in_range(0, 3, 3).string(a[1])
        elif kind == "--":
            f.int_in_range(0, 6, 0).int_in_range(0, 3, 2)
        elif kind == "flag":
            f.int_in_range(0, 6, FLAG_SPECS.index(a[1])).int_in_range(0, 3, 0)
        else:  # ("eq", name, value)
            f.int_in_range(0, 6, FLAG_SPECS.index(a[1])).int_in_range(0, 3, 1).string(a[2])
    return f


def flags_seeds():
    t = "fuzz_flags"
    reset(t)
    write(t, "defaults", flags({}, []))
    write(t, "typical_args", flags({}, [("eq", "listen", "0.0.0.0:50051"),
                                        ("eq", "poll-interval", "10s"),
                                        ("eq", "sync-rate", "20"), ("eq", "workers", "4"),
                                        ("flag", "help")]))
    write(t, "separate_values", flags({}, [("flag", "workers"), ("raw", "8"),
                                           ("flag", "poll-interval"), ("raw", "1m30s")]))
    write(t, "env_configmap", flags({"poll-interval": "500ms", "sync-rate": "0.5",
                                     "workers": "64", "log-level": "debug"}, []))
    write(t, "env_out_of_range", flags({"poll-interval": "-1s", "sync-rate": "nan",
                                        "workers": "9223372036854775808"}, []))
    write(t, "args_win_over_env", flags({"workers": "2"}, [("eq", "workers", "3")]))
    write(t, "bad_values", flags({}, [("eq", "sync-rate", "1e400"), ("eq", "workers", "0x10"),
                                      ("eq", "poll-interval", "10"), ("eq", "help", "maybe")]))
    write(t, "positional_and_dashdash", flags({}, [("raw", "extra"), ("--",),
                                                  ("raw", "--workers=5")]))
    write(t, "unknown_and_missing", flags({}, [("raw", "--nope=1"), ("flag", "store")]))
    write(t, "long_env_value", flags({"listen": "a" * 5000}, []))


# --- fuzz_cli_options: env, argc, args --------------------------------------
CLI_WORDS = ["sync", "get", "list", "watch", "help", "-h", "--", "--help", "--server",
             "--timeout", "--output", "--source-region", "--blueprint-id", "--to",
             "--request-id", "--validate-only", "--wait", "--filter", "--page-size",
             "--page-token", "--all", "json", "text", "ap-guangzhou", "ap-singapore,ap-tokyo",
             "lhbp-ls883feh", "syncJobs/abc", "10s", "127.0.0.1:50051"]


def cli(args, server_env=None, timeout_env=None):
    f = Fdp()
    f.boolean(server_env is not None)
    if server_env is not None:
        f.string(server_env)
    f.boolean(timeout_env is not None)
    if timeout_env is not None:
        f.string(timeout_env)
    f.int_in_range(0, 12, len(args))
    for a in args:
        if "=" in a and a.split("=", 1)[0] in CLI_WORDS:
            word, value = a.split("=", 1)
            f.int_in_range(0, 2, 1).int_in_range(0, len(CLI_WORDS) - 1, CLI_WORDS.index(word))
            f.string(value)
        elif a in CLI_WORDS:
            f.int_in_range(0, 2, 0).int_in_range(0, len(CLI_WORDS) - 1, CLI_WORDS.index(a))
        else:
            f.int_in_range(0, 2, 2).string(a)
    return f


def cli_seeds():
    t = "fuzz_cli_options"
    reset(t)
    write(t, "sync_wait", cli(["sync", "--source-region", "ap-guangzhou", "--blueprint-id",
                               "lhbp-ls883feh", "--to", "ap-beijing,ap-shanghai", "--wait"]))
    write(t, "sync_repeated_to", cli(["--server=10.0.0.1:50051", "sync", "--source-region=ap-tokyo",
                                      "--blueprint-id=lhbp-ls883feh", "--to=ap-seoul",
                                      "--to", " ap-singapore , ap-hongkong", "--validate-only"]))
    write(t, "sync_wait_and_validate", cli(["sync", "--source-region", "ap-tokyo",
                                            "--blueprint-id", "lhbp-ls883feh", "--to",
                                            "ap-seoul", "--wait", "--validate-only"]))
    write(t, "sync_empty_region", cli(["sync", "--to", "ap-seoul,,ap-tokyo"]))
    write(t, "get_job", cli(["get", "syncJobs/0b8c8f3e-4d7a-4b8e-9a52-1f2e3d4c5b6a",
                             "--output", "json"]))
    write(t, "watch_bare_id", cli(["--timeout", "2m", "watch", "abc"]))
    write(t, "list_filter", cli(["list", "--filter", 'state = RUNNING AND blueprint_id = "lhbp-ls883feh"',
                                 "--page-size", "100", "--all"]))
    write(t, "list_bad_page_size", cli(["list", "--page-size=-1"]))
    write(t, "help_topics", cli(["help", "sync"]))
    write(t, "dash_h", cli(["-h", "list"]))
    write(t, "env_server_timeout", cli(["get", "x"], server_env="blueprint-sync:50051",
                                       timeout_env="90s"))
    write(t, "env_bad_server", cli(["list"], server_env="host name:1", timeout_env="0s"))
    write(t, "flag_before_command", cli(["--to", "ap-seoul", "sync"]))
    write(t, "unknown_command", cli(["delete", "syncJobs/x"]))
    write(t, "control_bytes", cli(["get", "syncJobs/\x1b]0;title\x07", "--output=\x9b31m"]))


# --- fuzz_tc3_verifier: see the target; both passes read every seed ---------
def tc3_hostile(auth, content_type, host, timestamp, name, value, body):
    f = Fdp()
    for s in (auth, content_type, host, timestamp, name, value):
        f.string(s)
    f.remaining(body)
    return f


def tc3_signed(secret_id, secret_key, timestamp, host_index, json_utf8, flip_at, flip_xor, body,
               host=None, port=None):
    f = Fdp().string(secret_id).string(secret_key)
    f.int_in_range(0, 253402300799, timestamp)
    if host is None:
        f.boolean(True).int_in_range(0, 6, host_index)
    else:
        f.boolean(False).string(host).boolean(port is not None)
        if port is not None:
            f.int_in_range(1, 65535, port)
    f.boolean(not json_utf8)
    f.size_t(flip_at).int_in_range(1, 255, flip_xor)
    f.remaining(body)
    return f


DOC_AUTH = ("TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
            "tc3_request, SignedHeaders=content-type;host, Signature="
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")
DOC_BODY = ('{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], '
            '"Name": "instance-name"}]}')
SYNC_BODY = '{"BlueprintId":"lhbp-ls883feh","DestinationRegions":["ap-singapore","ap-hongkong"]}'


def tc3_seeds():
    t = "fuzz_tc3_verifier"
    reset(t)
    write(t, "doc_example_request", tc3_hostile(DOC_AUTH, "application/json; charset=utf-8",
                                                "cvm.tencentcloudapi.com", "1551113065",
                                                "x-tc-action", "DescribeInstances", DOC_BODY))
    write(t, "extra_signed_header", tc3_hostile(
        DOC_AUTH.replace("content-type;host", "content-type;host;x-tc-action"),
        "application/json", "lighthouse.tencentcloudapi.com:443", " 1551113065 ", "x-tc-action",
        "SyncBlueprint", SYNC_BODY))
    write(t, "missing_parts", tc3_hostile("TC3-HMAC-SHA256 Credential=AKID/2019-02-25/cvm",
                                          "", "", "abc", "", "", ""))
    write(t, "wrong_algorithm", tc3_hostile(DOC_AUTH.replace("TC3-HMAC-SHA256", "HMAC-SHA1"),
                                            "application/json", "[::1]:8080",
                                            "99999999999999999999", "host", "x", "{}"))
    write(t, "no_host_signed", tc3_hostile(DOC_AUTH.replace("content-type;host", "content-type;;"),
                                           "APPLICATION/JSON", "Lighthouse.TencentCloudAPI.com",
                                           "1551113065", "content-type", "text/plain", "{}"))
    write(t, "signed_sync", tc3_signed("AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
                                       "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", 1551113065, 0, False,
                                       3, 1, SYNC_BODY))
    write(t, "signed_utf8_regional", tc3_signed("AKIDexample", "secret", 1767225600, 2, True,
                                                10, 0x80, DOC_BODY))
    write(t, "signed_empty_body_ipv6", tc3_signed("AKID1", "", 0, 4, False, 0, 255, ""))
    write(t, "signed_fuzz_host_port", tc3_signed("AKID2", "k\x00\xff", 253402300799, 0, True,
                                                 7, 0x20, "{}", host="emulator.local",
                                                 port=8443))


# --- fuzz_list_query: page_size, token kind, sequence, order_by, other filter, token, filter
def list_query(page_size, token_kind, sequence, other_filter, raw_token, filter_, order_by=""):
    f = Fdp().int32(page_size).int_in_range(0, 3, token_kind)
    f.int_in_range(1, 2**63 - 1, sequence)
    f.string(order_by).string(other_filter).string(raw_token).remaining(filter_)
    return f


def list_query_seeds():
    t = "fuzz_list_query"
    reset(t)
    write(t, "no_filter", list_query(0, 0, 1, "", "", ""))
    write(t, "state_and_id", list_query(100, 1, 42, "state = FAILED", "",
                                        'state = RUNNING AND blueprint_id = "lhbp-ls883feh"'))
    write(t, "all_fields_lower_and", list_query(2000, 2, 7, "",
                                                "", 'state=succeeded and source_region="ap-guangzhou"'
                                                ' AND blueprint_id=lhbp-ls883feh'))
    write(t, "negative_page_size", list_query(-1, 0, 1, "", "", "state = QUEUED"))
    write(t, "bad_filters", list_query(10, 0, 1, "", "", 'state = "unterminated'))
    write(t, "unknown_field", list_query(10, 0, 1, "", "", "name = x AND"))
    write(t, "state_unspecified", list_query(10, 0, 1, "", "", "state = STATE_UNSPECIFIED"))
    write(t, "garbage_token", list_query(10, 0, 1, "", "not-base64!!", "state = RUNNING"))
    write(t, "token_other_filter", list_query(10, 2, 99, "state = RUNNING", "", "state = FAILED"))
    write(t, "long_filter", list_query(50, 1, 5, "", "",
                                       " AND ".join(['create_time >= "2026-12-01T00:00:00Z"'] * 20)))
    write(t, "new_fields", list_query(
        20, 1, 11, "", "",
        'state = CANCELLING AND request_id = "3f1c0a5e-8f1e-4c1b-9a57-0b1e2f3a4b5c" AND '
        'creator = "uri:spiffe://cluster/ns/web/sa/deployer" AND destination_region = ap-shanghai '
        'AND retry_of = "syncJobs/abc"'))
    write(t, "labels", list_query(
        20, 1, 12, "", "", "labels.team = web AND labels.example.com/tier = gold", "create_time"))
    write(t, "bad_label_key", list_query(20, 0, 1, "", "", "labels.-team = web"))
    write(t, "create_time_ops", list_query(
        5, 1, 13, "", "",
        'create_time > "2026-01-01T00:00:00Z" AND create_time != "2026-06-01T08:00:00.5+08:00" '
        'AND create_time<=2026-12-31T23:59:59Z', "create_time asc"))
    write(t, "bad_time", list_query(5, 0, 1, "", "", 'create_time >= "2026-12-01"'))
    write(t, "duplicate_field", list_query(5, 0, 1, "", "", "state = RUNNING AND state = FAILED"))
    write(t, "order_oldest_first", list_query(5, 1, 14, "", "", "", " create_time  ASC "))
    write(t, "bad_order_by", list_query(5, 0, 1, "", "", "", "update_time desc"))
    write(t, "token_other_order", list_query(5, 3, 15, "", "", "labels.team = web",
                                             "create_time desc"))


if __name__ == "__main__":
    sync_request_seeds()
    flags_seeds()
    cli_seeds()
    tc3_seeds()
    list_query_seeds()
