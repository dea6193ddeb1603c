#pragma once
// The sync.v1 service stubs and messages (see api/messages.h).

#include "api/messages.h"
#include "sync/v1/sync.grpc.pb.h"
