// jemalloc's settings for sync-bridge, read when the allocator starts;
// MALLOC_CONF in the environment is applied after these and wins. Linked
// only when the bridge is built with jemalloc (bridge/CMakeLists.txt).
//
// background_thread: jemalloc's own threads give freed pages back to the
// system on its decay schedule (10 s). Without them pages are purged only
// when the process happens to allocate again, so a bridge whose sockets
// went quiet could keep the peak of their last burst: up to 161–176 KB
// per idle WebSocket after each had read a 2,000-patch history, against
// 19–21 KB in every run with them, at the same CPU per delivery under
// fan-out (BENCHMARKS.md, "Memory after a burst"). syncd gained too little
// from it to show (same section).
extern "C" {
const char* malloc_conf = "background_thread:true";
}
