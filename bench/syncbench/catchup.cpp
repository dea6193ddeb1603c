// syncbench catchup: a channel pre-filled with N patches, read from version
// 0 by one client over gRPC (a Session's history pages, as a reconnecting
// client reads it), beside the anchor: the same rows read by
// `COPY (SELECT version, body ... ORDER BY version) TO STDOUT`.
//
// Like the COPY client, the gRPC client takes the bytes as they come and
// builds no objects: it walks each page's wire format for the patches'
// server_version (checking order) through the generic stub. With --decode
// it parses every page into SessionResponse objects instead, which on this
// machine costs the client more CPU than the server spends sending.

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>
#include <grpcpp/grpcpp.h>
#include <libpq-fe.h>

#include <iostream>

#include "api/grpc.h"
#include "commands.h"
#include "fill.h"
#include "raw_session.h"
#include "report.h"

namespace syncbench {
namespace {

// The anchor: rows/s of COPY ... TO STDOUT of the same rows, in version order.
double copy_rate(const std::string& url, std::int64_t channel_id, std::int64_t n) {
  PGconn* conn = PQconnectdb(url.c_str());
  const auto t0 = Clock::now();
  PGresult* res = PQexec(conn, ("COPY (SELECT version, body FROM patches WHERE channel_id = " +
                                std::to_string(channel_id) + " ORDER BY version) TO STDOUT (FORMAT binary)")
                                   .c_str());
  std::int64_t chunks = 0;
  if (PQresultStatus(res) == PGRES_COPY_OUT) {
    char* buf = nullptr;
    while (PQgetCopyData(conn, &buf, 0) > 0) {  // one row per call in binary COPY (plus header/trailer)
      ++chunks;
      PQfreemem(buf);
    }
  }
  PQclear(res);
  while ((res = PQgetResult(conn)) != nullptr) PQclear(res);
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  PQfinish(conn);
  return chunks >= n ? static_cast<double>(n) / seconds : 0;
}

using google::protobuf::internal::WireFormatLite;

// Walks one encoded SessionResponse; for each patch of a sync_state page,
// checks that its server_version is `*got + 1` and counts it.
bool scan_page(const std::string& bytes, std::int64_t* got) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  bool ordered = true;
  auto enter = [&](auto&& inner) {  // a length-delimited field's contents
    std::uint32_t len;
    if (!in.ReadVarint32(&len)) return false;
    const auto limit = in.PushLimit(static_cast<int>(len));
    const bool ok = inner();
    in.PopLimit(limit);
    return ok;
  };
  while (std::uint32_t tag = in.ReadTag()) {
    if (tag != WireFormatLite::MakeTag(api::SessionResponse::kSyncStateFieldNumber,
                                       WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) {
      if (!WireFormatLite::SkipField(&in, tag)) return false;
      continue;
    }
    const bool ok = enter([&] {
      while (std::uint32_t t = in.ReadTag()) {
        if (WireFormatLite::GetTagFieldNumber(t) != api::SyncState::kPatchesFieldNumber) {
          if (!WireFormatLite::SkipField(&in, t)) return false;
          continue;
        }
        std::int64_t version = 0;
        if (!enter([&] {
              while (std::uint32_t pt = in.ReadTag()) {
                if (WireFormatLite::GetTagFieldNumber(pt) == api::Patch::kServerVersionFieldNumber) {
                  std::uint64_t v;
                  if (!in.ReadVarint64(&v)) return false;
                  version = static_cast<std::int64_t>(v);
                } else if (!WireFormatLite::SkipField(&in, pt)) {
                  return false;
                }
              }
              return true;
            })) {
          return false;
        }
        ordered &= version == *got + 1;
        ++*got;
      }
      return true;
    });
    if (!ok) return false;
  }
  return ordered;
}

// Reads the channel's history as bytes; patches received, `ordered` false on a gap.
std::int64_t read_raw(const std::shared_ptr<grpc::Channel>& channel, const std::string& name, std::int64_t n,
                      bool* ordered) {
  RawSession session(channel, name);
  std::int64_t got = 0;
  std::string bytes;
  while (got < n && session.next(&bytes)) *ordered &= scan_page(bytes, &got);
  return got;
}

// The same with the generated stub, parsing every page.
std::int64_t read_decoded(const std::shared_ptr<grpc::Channel>& channel, const std::string& name, std::int64_t n,
                          bool* ordered) {
  auto stub = api::Sync::NewStub(channel);
  grpc::ClientContext ctx;
  auto stream = stub->Session(&ctx);
  api::SessionRequest open;
  open.mutable_open()->set_channel(name);
  stream->Write(open);
  api::SessionResponse msg;
  std::int64_t got = 0;
  while (got < n && stream->Read(&msg)) {
    for (const api::Patch& p : msg.sync_state().patches()) {
      *ordered &= p.server_version() == got + 1;
      ++got;
    }
  }
  ctx.TryCancel();
  return got;
}

}  // namespace

int catchup(const CatchupOptions& o) {
  const std::string channel = "catchup-" + std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  std::cerr << "catchup: filling " << channel << " with " << o.patches << " patches..." << std::endl;
  const std::int64_t id = syncbench::fill(o.database_url, channel, o.patches);
  const double anchor = copy_rate(o.database_url, id, o.patches);

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto grpc_channel = grpc::CreateCustomChannel(o.server, grpc::InsecureChannelCredentials(), args);
  bool ordered = true;
  const auto t0 = Clock::now();
  const std::int64_t got = o.decode ? read_decoded(grpc_channel, channel, o.patches, &ordered)
                                    : read_raw(grpc_channel, channel, o.patches, &ordered);
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const double rate = static_cast<double>(got) / seconds;
  const bool ok = got == o.patches && ordered && anchor > 0;
  nlohmann::ordered_json out = {
      {"command", "catchup"}, {"patches", got}, {"patches_per_s", std::round(rate)},
      {"anchor_copy_rows_per_s", std::round(anchor)}, {"ratio", anchor > 0 ? std::round(rate / anchor * 100) / 100 : 0},
      {"in_order", ordered},
      {"parameters", {{"patches", o.patches}, {"server", o.server}, {"client", o.decode ? "decode" : "bytes"}}},
      {"machine", machine()}};
  if (o.json) {
    std::cout << out.dump() << std::endl;
  } else {
    std::cout << "catchup: " << got << " patches in Session history pages at " << std::llround(rate) << " patches/s; COPY anchor "
              << std::llround(anchor) << " rows/s; ratio " << out["ratio"] << (ordered ? "" : "; OUT OF ORDER") << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace syncbench
