// The rendezvous store (see store.h). Wire format: every message is a 4-byte little-endian
// length and a payload. The first message of a connection is the handshake ("JLS1" + secret),
// answered by one status byte; then requests (an op byte and its fields) and responses (a status
// byte and data) alternate.
#include "dist/store.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

#include "core/error.h"

namespace joule::dist {
namespace {

using Clock = std::chrono::steady_clock;

enum Op : uint8_t { kSet = 1, kGet = 2, kAdd = 3, kCas = 4, kWait = 5, kCheck = 6, kDelete = 7 };
enum Status : uint8_t { kOk = 0, kRefused = 1, kTimeout = 2, kBad = 3 };
constexpr char kMagic[4] = {'J', 'L', 'S', '1'};
constexpr uint32_t kMaxMessage = 1u << 30;
// The handshake ("JLS1" + secret) is short; a client is not trusted with a bigger buffer before it
// has shown the secret (anyone who can reach the port could otherwise make the store allocate 1 GiB).
constexpr uint32_t kMaxHandshake = 4096;

struct Writer {
  Bytes b;
  Writer() { b.resize(4); }  // room for the length
  void u8(uint8_t v) { b.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) { for (int i = 0; i < 4; i++) b.push_back(static_cast<char>((v >> (8 * i)) & 0xff)); }
  void i64(int64_t v) { uint64_t u = static_cast<uint64_t>(v); for (int i = 0; i < 8; i++) b.push_back(static_cast<char>((u >> (8 * i)) & 0xff)); }
  void bytes(const char* p, size_t n) { u32(static_cast<uint32_t>(n)); b.insert(b.end(), p, p + n); }
  void str(const std::string& s) { bytes(s.data(), s.size()); }
  void blob(const Bytes& v) { bytes(v.data(), v.size()); }
  Bytes finish() {
    uint32_t n = static_cast<uint32_t>(b.size() - 4);
    for (int i = 0; i < 4; i++) b[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    return std::move(b);
  }
};

struct Reader {
  const Bytes& b;
  size_t pos = 0;
  explicit Reader(const Bytes& bytes) : b(bytes) {}
  void need(size_t n) const {
    if (pos + n > b.size()) throw std::runtime_error("malformed store message");
  }
  uint8_t u8() { need(1); return static_cast<uint8_t>(b[pos++]); }
  uint32_t u32() {
    need(4);
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= static_cast<uint32_t>(static_cast<uint8_t>(b[pos + i])) << (8 * i);
    pos += 4;
    return v;
  }
  int64_t i64() {
    need(8);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= static_cast<uint64_t>(static_cast<uint8_t>(b[pos + i])) << (8 * i);
    pos += 8;
    return static_cast<int64_t>(v);
  }
  Bytes blob() {
    uint32_t n = u32();
    need(n);
    Bytes v(b.begin() + static_cast<long>(pos), b.begin() + static_cast<long>(pos + n));
    pos += n;
    return v;
  }
  std::string str() { Bytes v = blob(); return std::string(v.begin(), v.end()); }
};

// Compares without an early exit, so that the time taken says nothing about the secret.
bool constant_time_equal(const std::string& a, const std::string& b) {
  size_t n = a.size() > b.size() ? a.size() : b.size();
  volatile unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; i++) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = diff | static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

// Blocking I/O on the server side: false when the peer went away (or stop() shut the socket).
bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}
bool read_all(int fd, char* p, size_t n) {
  while (n > 0) {
    ssize_t k = ::recv(fd, p, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return false;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return true;
}
bool read_message(int fd, Bytes& out, uint32_t max_bytes = kMaxMessage) {
  char len[4];
  if (!read_all(fd, len, 4)) return false;
  uint32_t n = 0;
  for (int i = 0; i < 4; i++) n |= static_cast<uint32_t>(static_cast<uint8_t>(len[i])) << (8 * i);
  if (n > max_bytes) return false;
  out.resize(n);
  return read_all(fd, out.data(), n);
}

std::string peer_name(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char host[NI_MAXHOST], serv[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof(host), serv, sizeof(serv),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) return "?";
  return std::string(host) + ":" + serv;
}

void set_nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

}  // namespace

// ---------------------------------------------------------------- server

struct StoreServer::Impl {
  std::string secret;
  int listen_fd = -1;
  int port = 0;
  std::thread acceptor;
  std::mutex mu;  // guards data, conns, stopping
  std::condition_variable changed;
  std::map<std::string, Bytes> data;
  std::map<int, std::thread> conns;
  std::vector<std::thread> finished;
  bool stopping = false;

  void accept_loop() {
    for (;;) {
      int fd = ::accept(listen_fd, nullptr, nullptr);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // stop() shut the socket down
      }
      set_nodelay(fd);
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) {
        ::close(fd);
        return;
      }
      conns.emplace(fd, std::thread([this, fd] { serve(fd); }));
    }
  }

  void serve(int fd) {
    try {
      serve_inner(fd);
    } catch (const std::exception&) {
      // A malformed message: drop the connection.
    }
    std::lock_guard<std::mutex> lock(mu);
    auto it = conns.find(fd);
    if (it != conns.end()) {
      finished.push_back(std::move(it->second));
      conns.erase(it);
    }
    ::close(fd);
  }

  bool all_present(const std::vector<std::string>& keys) {
    for (const auto& k : keys) if (!data.count(k)) return false;
    return true;
  }

  void serve_inner(int fd) {
    Bytes msg;
    if (!read_message(fd, msg, kMaxHandshake)) {
      std::cerr << "joule store: refused a client from " << peer_name(fd)
                << ": its first message is not a handshake (too long, or cut short)" << std::endl;
      return;
    }
    bool ok = msg.size() >= 4 && std::memcmp(msg.data(), kMagic, 4) == 0 &&
              constant_time_equal(std::string(msg.begin() + 4, msg.end()), secret);
    Writer hello;
    hello.u8(ok ? kOk : kRefused);
    Bytes h = hello.finish();
    write_all(fd, h.data(), h.size());
    if (!ok) {
      std::cerr << "joule store: refused a client from " << peer_name(fd)
                << ": it did not present this job's secret (JOULE_SECRET)" << std::endl;
      return;
    }
    while (read_message(fd, msg)) {
      Reader r(msg);
      Writer w;
      uint8_t op = r.u8();
      std::unique_lock<std::mutex> lock(mu);
      if (stopping) return;
      switch (op) {
        case kSet: {
          std::string key = r.str();
          data[key] = r.blob();
          changed.notify_all();
          w.u8(kOk);
          break;
        }
        case kGet:
        case kWait: {
          std::vector<std::string> keys;
          if (op == kGet) {
            keys.push_back(r.str());
          } else {
            uint32_t n = r.u32();
            for (uint32_t i = 0; i < n; i++) keys.push_back(r.str());
          }
          int64_t ms = r.i64();
          auto deadline = Clock::now() + Millis(ms);
          bool present = changed.wait_until(lock, deadline, [&] { return stopping || all_present(keys); });
          if (stopping) return;
          if (!present) {
            w.u8(kTimeout);
          } else {
            w.u8(kOk);
            if (op == kGet) w.blob(data[keys[0]]);
          }
          break;
        }
        case kAdd: {
          std::string key = r.str();
          int64_t delta = r.i64();
          int64_t value = 0;
          auto it = data.find(key);
          if (it != data.end()) value = std::strtoll(std::string(it->second.begin(), it->second.end()).c_str(), nullptr, 10);
          value += delta;
          std::string text = std::to_string(value);
          data[key] = Bytes(text.begin(), text.end());
          changed.notify_all();
          w.u8(kOk);
          w.i64(value);
          break;
        }
        case kCas: {
          std::string key = r.str();
          Bytes expected = r.blob(), desired = r.blob();
          auto it = data.find(key);
          if ((it == data.end() && expected.empty()) || (it != data.end() && it->second == expected)) {
            data[key] = desired;
            changed.notify_all();
          }
          w.u8(kOk);
          w.blob(data.count(key) ? data[key] : Bytes());
          break;
        }
        case kCheck: {
          uint32_t n = r.u32();
          std::vector<std::string> keys;
          for (uint32_t i = 0; i < n; i++) keys.push_back(r.str());
          w.u8(kOk);
          w.u8(all_present(keys) ? 1 : 0);
          break;
        }
        case kDelete: {
          std::string key = r.str();
          w.u8(kOk);
          w.u8(data.erase(key) ? 1 : 0);
          break;
        }
        default:
          w.u8(kBad);
      }
      lock.unlock();
      Bytes out = w.finish();
      if (!write_all(fd, out.data(), out.size())) return;
    }
  }
};

StoreServer::StoreServer(const std::string& host, int port, const std::string& secret) : impl_(std::make_shared<Impl>()) {
  JOULE_CHECK(port >= 0 && port <= 65535, Code::InvalidArgument, "store: port must be in 0..65535, got ", port);
  impl_->secret = secret;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) fail(Code::InvalidArgument, "store: cannot resolve MASTER_ADDR '", host, "': ", gai_strerror(rc));
  int fd = -1, err = 0;
  for (addrinfo* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) { err = errno; continue; }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 1024) == 0) break;
    err = errno;
    ::close(fd);
    fd = -1;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    if (err == EADDRINUSE) {
      fail(Code::InvalidArgument, "store: port ", port, " on ", host,
           " is already in use (MASTER_PORT): another job or program holds it; choose another port or stop that job");
    }
    fail(Code::InvalidArgument, "store: cannot listen on ", host, ":", port, ": ", std::strerror(err));
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  impl_->port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                               : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  impl_->listen_fd = fd;
  Impl* impl = impl_.get();
  impl_->acceptor = std::thread([impl] { impl->accept_loop(); });
}

int StoreServer::port() const { return impl_->port; }

void StoreServer::stop() {
  Impl& s = *impl_;
  std::map<int, std::thread> conns;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.stopping) return;
    s.stopping = true;
    ::shutdown(s.listen_fd, SHUT_RDWR);
    for (auto& c : s.conns) ::shutdown(c.first, SHUT_RDWR);
    s.changed.notify_all();
  }
  if (s.acceptor.joinable()) s.acceptor.join();
  ::close(s.listen_fd);
  // Connection threads remove themselves from conns; wait for all of them to finish.
  for (;;) {
    std::vector<std::thread> done;
    bool empty;
    {
      std::lock_guard<std::mutex> lock(s.mu);
      done.swap(s.finished);
      empty = s.conns.empty();
    }
    for (auto& t : done) t.join();
    if (empty) break;
    std::this_thread::sleep_for(Millis(1));
  }
  std::lock_guard<std::mutex> lock(s.mu);
  for (auto& t : s.finished) t.join();
  s.finished.clear();
}

StoreServer::~StoreServer() {
  try {
    stop();
  } catch (...) {
  }
}

// ---------------------------------------------------------------- client

namespace {

[[noreturn]] void timeout_error(const std::string& what, const std::string& addr, Millis t) {
  fail(Code::DistTimeout, "store: ", what, " timed out after ", t.count(), " ms (rendezvous store at ", addr,
       "): a peer may have died or never started");
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left < 0 ? 0 : (left > 1 << 30 ? 1 << 30 : static_cast<int>(left));
}

// Waits for fd to be ready; false on deadline.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, remaining_ms(deadline));
    if (rc < 0 && errno == EINTR) continue;
    return rc > 0;
  }
}

// 0 ok, 1 deadline, 2 connection lost
int send_deadline(int fd, const char* p, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    if (!wait_fd(fd, POLLOUT, deadline)) return 1;
    ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (k <= 0) return 2;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return 0;
}
int recv_deadline(int fd, char* p, size_t n, Clock::time_point deadline) {
  while (n > 0) {
    if (!wait_fd(fd, POLLIN, deadline)) return 1;
    ssize_t k = ::recv(fd, p, n, MSG_DONTWAIT);
    if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (k <= 0) return 2;
    p += k;
    n -= static_cast<size_t>(k);
  }
  return 0;
}

int connect_once(const std::string& host, int port, Clock::time_point deadline, int& err) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) fail(Code::InvalidArgument, "store: cannot resolve MASTER_ADDR '", host, "': ", gai_strerror(rc));
  int fd = -1;
  err = ECONNREFUSED;
  for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) { err = errno; continue; }
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline)) {
        int so = 0;
        socklen_t len = sizeof(so);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
        if (so == 0) break;
        err = so;
      } else {
        err = errno == EINPROGRESS ? ETIMEDOUT : errno;
      }
      ::close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  if (fd >= 0) set_nodelay(fd);
  return fd;
}

}  // namespace

StoreClient::StoreClient(const std::string& host, int port, const std::string& secret, Millis timeout)
    : host_(host), port_(port), timeout_(timeout) {
  JOULE_CHECK(port > 0 && port <= 65535, Code::InvalidArgument, "store: port must be in 1..65535, got ", port);
  auto deadline = Clock::now() + timeout;
  int err = 0;
  for (;;) {
    fd_ = connect_once(host, port, deadline, err);
    if (fd_ >= 0) break;
    if (Clock::now() >= deadline) {
      fail(Code::DistTimeout, "store: could not reach the rendezvous store at ", address(), " within ", timeout.count(),
           " ms (", std::strerror(err), "): is MASTER_ADDR/MASTER_PORT right, and is rank 0 (or the launcher) running?");
    }
    std::this_thread::sleep_for(Millis(std::min(50, remaining_ms(deadline) + 1)));
  }
  Writer w;
  w.b.insert(w.b.end(), kMagic, kMagic + 4);
  w.b.insert(w.b.end(), secret.begin(), secret.end());
  Bytes hello = w.finish();
  Bytes reply(5);
  int rc = send_deadline(fd_, hello.data(), hello.size(), deadline);
  if (rc == 0) rc = recv_deadline(fd_, reply.data(), 5, deadline);
  if (rc != 0 || reply[4] != kOk) {
    ::close(fd_);
    fd_ = -1;
    if (rc == 1) timeout_error("the handshake", address(), timeout);
    fail(Code::InvalidArgument, "store: the rendezvous store at ", address(),
         " refused this client: wrong job secret (JOULE_SECRET must be the one the launcher gave this job)");
  }
}

StoreClient::~StoreClient() {
  if (fd_ >= 0) ::close(fd_);
}

Bytes StoreClient::call(const Bytes& request, Millis wait_budget, const std::string& what) {
  std::lock_guard<std::mutex> lock(mu_);
  JOULE_CHECK(fd_ >= 0, Code::DistTimeout, "store: the connection to ", address(), " was lost earlier");
  // The server answers a wait within wait_budget; the rest is transfer time.
  Millis budget = wait_budget + (wait_budget > timeout_ ? Millis(0) : timeout_ - wait_budget) + Millis(2000);
  auto deadline = Clock::now() + budget;
  int rc = send_deadline(fd_, request.data(), request.size(), deadline);
  char len[4];
  if (rc == 0) rc = recv_deadline(fd_, len, 4, deadline);
  Bytes out;
  if (rc == 0) {
    uint32_t n = 0;
    for (int i = 0; i < 4; i++) n |= static_cast<uint32_t>(static_cast<uint8_t>(len[i])) << (8 * i);
    out.resize(n);
    rc = recv_deadline(fd_, out.data(), n, deadline);
  }
  if (rc != 0) {
    ::close(fd_);
    fd_ = -1;
    if (rc == 1) timeout_error(what, address(), budget);
    fail(Code::DistTimeout, "store: ", what, ": lost the connection to the rendezvous store at ", address(),
         " (the process hosting it, the launcher or rank 0, has exited)");
  }
  JOULE_CHECK(!out.empty(), Code::Internal, "store: empty reply");
  if (static_cast<uint8_t>(out[0]) == kTimeout) timeout_error(what, address(), wait_budget);
  JOULE_CHECK(static_cast<uint8_t>(out[0]) == kOk, Code::Internal, "store: the server rejected the request (", what, ")");
  return out;
}

void StoreClient::set(const std::string& key, const Bytes& value) {
  Writer w;
  w.u8(kSet);
  w.str(key);
  w.blob(value);
  call(w.finish(), Millis(0), "set('" + key + "')");
}

Bytes StoreClient::get(const std::string& key, Millis timeout) {
  if (timeout.count() < 0) timeout = timeout_;
  Writer w;
  w.u8(kGet);
  w.str(key);
  w.i64(timeout.count());
  Bytes out = call(w.finish(), timeout, "get('" + key + "')");
  Bytes copy(out.begin() + 1, out.end());
  Reader r(copy);
  return r.blob();
}

int64_t StoreClient::add(const std::string& key, int64_t delta) {
  Writer w;
  w.u8(kAdd);
  w.str(key);
  w.i64(delta);
  Bytes out = call(w.finish(), Millis(0), "add('" + key + "')");
  Reader r(out);
  r.u8();
  return r.i64();
}

Bytes StoreClient::compare_set(const std::string& key, const Bytes& expected, const Bytes& desired) {
  Writer w;
  w.u8(kCas);
  w.str(key);
  w.blob(expected);
  w.blob(desired);
  Bytes out = call(w.finish(), Millis(0), "compareSet('" + key + "')");
  Reader r(out);
  r.u8();
  return r.blob();
}

void StoreClient::wait(const std::vector<std::string>& keys, Millis timeout) {
  if (timeout.count() < 0) timeout = timeout_;
  Writer w;
  w.u8(kWait);
  w.u32(static_cast<uint32_t>(keys.size()));
  for (const auto& k : keys) w.str(k);
  w.i64(timeout.count());
  std::string what = "wait(";
  for (size_t i = 0; i < keys.size() && i < 4; i++) what += (i ? ", '" : "'") + keys[i] + "'";
  call(w.finish(), timeout, what + (keys.size() > 4 ? ", ...)" : ")"));
}

bool StoreClient::check(const std::vector<std::string>& keys) {
  Writer w;
  w.u8(kCheck);
  w.u32(static_cast<uint32_t>(keys.size()));
  for (const auto& k : keys) w.str(k);
  Bytes out = call(w.finish(), Millis(0), "check");
  return out.size() > 1 && out[1] != 0;
}

bool StoreClient::remove(const std::string& key) {
  Writer w;
  w.u8(kDelete);
  w.str(key);
  Bytes out = call(w.finish(), Millis(0), "delete('" + key + "')");
  return out.size() > 1 && out[1] != 0;
}

}  // namespace joule::dist
