#pragma once
// The sync.v1 messages for C++ code. Include this (or api/grpc.h for the
// service stubs), never the generated headers directly: it names the
// generated namespace once, as `api` (proto/CMakeLists.txt says why the
// generated namespace is `syncapi` rather than `sync`).

#include "sync/v1/sync.pb.h"

namespace api = ::syncapi::v1;
