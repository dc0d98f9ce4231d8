// The rendezvous store: a small TCP key-value store. The server runs on its own threads inside
// one process of the job (the launcher, or rank 0); every rank talks to it through a synchronous
// client. Every client presents the job secret first; the server compares it in constant time
// and refuses (and logs) a client with the wrong one. Every call has a deadline: on expiry it
// throws DIST_TIMEOUT.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace joule::dist {

using Bytes = std::vector<char>;
using Millis = std::chrono::milliseconds;

class StoreServer {
 public:
  // Binds host:port (port 0 picks a free one) and starts serving. A port in use throws
  // INVALID_ARGUMENT naming it.
  StoreServer(const std::string& host, int port, const std::string& secret);
  ~StoreServer();
  StoreServer(const StoreServer&) = delete;
  StoreServer& operator=(const StoreServer&) = delete;

  int port() const;
  void stop();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

class StoreClient {
 public:
  // Connects (retrying while the server is not up yet) within `timeout`, then authenticates.
  StoreClient(const std::string& host, int port, const std::string& secret, Millis timeout);
  ~StoreClient();
  StoreClient(const StoreClient&) = delete;
  StoreClient& operator=(const StoreClient&) = delete;

  void set(const std::string& key, const Bytes& value);
  // Waits for the key to exist, up to the timeout (the client's default when negative).
  Bytes get(const std::string& key, Millis timeout = Millis(-1));
  int64_t add(const std::string& key, int64_t delta);
  // Sets key to `desired` when its value is `expected` (a missing key matches an empty
  // `expected`); returns the value the key holds afterwards.
  Bytes compare_set(const std::string& key, const Bytes& expected, const Bytes& desired);
  void wait(const std::vector<std::string>& keys, Millis timeout = Millis(-1));
  bool check(const std::vector<std::string>& keys);
  bool remove(const std::string& key);

  Millis timeout() const { return timeout_; }
  void set_timeout(Millis t) { timeout_ = t; }
  std::string address() const { return host_ + ":" + std::to_string(port_); }

 private:
  Bytes call(const Bytes& request, Millis wait_budget, const std::string& what);
  std::mutex mu_;
  int fd_ = -1;
  std::string host_;
  int port_;
  Millis timeout_;
};

}  // namespace joule::dist
