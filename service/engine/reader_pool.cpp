#include "engine/reader_pool.h"

namespace syncd::engine {

ReaderPool::ReaderPool(const store::ChangeLogFactory& factory, int threads) {
  for (int i = 0; i < threads; ++i) logs_.push_back(factory());
  for (auto& log : logs_) threads_.emplace_back([this, l = log.get()] { run(*l); });
}

ReaderPool::~ReaderPool() { stop(); }

void ReaderPool::submit(Task task) {
  std::lock_guard lock(mu_);
  queue_.push_back(std::move(task));
  wake_.notify_one();
}

void ReaderPool::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    wake_.notify_all();
  }
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

void ReaderPool::run(store::ChangeLog& log) {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task(log);
  }
}

}  // namespace syncd::engine
