// Listener and connect(): TCP setup plus the handshake (handshake.h) driven
// over async reads/writes under one deadline, then the stream headers.
#include <future>

#include "transport/asio_link.h"

namespace zen::transport {
namespace {

using asio::ip::tcp;
using Done = std::function<void(std::shared_ptr<Link>, const std::string&)>;

class HandshakeSession : public std::enable_shared_from_this<HandshakeSession> {
 public:
  HandshakeSession(tcp::socket socket, Handshake::Role role, HandshakeConfig cfg, LinkOptions opts, Done done)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        hs_(role, std::move(cfg)),
        role_(role),
        opts_(std::move(opts)),
        done_(std::move(done)) {}

  void start() {
    std::error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    timer_.expires_after(opts_.handshake_timeout);
    timer_.async_wait([self = shared_from_this()](std::error_code e) {
      if (e || self->finished_) return;
      self->timed_out_ = true;
      std::error_code ignore;
      self->socket_.close(ignore);
    });
    try {
      if (role_ == Handshake::Role::initiator) {
        write(hs_.write_msg1(), [](auto self) { self->initiator_read_header(); });
      } else {
        responder_read_header();
      }
    } catch (const std::exception& e) {
      finish(nullptr, e.what());
    }
  }

 private:
  using Step = std::function<void(std::shared_ptr<HandshakeSession>)>;

  void read(size_t n, Step next) {
    size_t at = in_.size();
    in_.resize(at + n);
    asio::async_read(socket_, asio::buffer(in_.data() + at, n),
                     [self = shared_from_this(), next = std::move(next)](std::error_code ec, size_t) {
                       if (ec) return self->io_failed(ec);
                       try {
                         next(self);
                       } catch (const std::exception& e) {
                         self->finish(nullptr, e.what());
                       }
                     });
  }

  void write(std::vector<uint8_t> bytes, Step next) {
    out_ = std::move(bytes);
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this(), next = std::move(next)](std::error_code ec, size_t) {
                        if (ec) return self->io_failed(ec);
                        try {
                          next(self);
                        } catch (const std::exception& e) {
                          self->finish(nullptr, e.what());
                        }
                      });
  }

  void io_failed(std::error_code ec) {
    if (timed_out_) {
      return finish(nullptr, "handshake deadline of " + std::to_string(opts_.handshake_timeout.count()) +
                                 " ms exceeded (peer stalled)");
    }
    if (ec == asio::error::eof || ec == asio::error::connection_reset) {
      return finish(nullptr, role_ == Handshake::Role::initiator
                                 ? "responder closed the connection during the handshake (it refused us: wrong "
                                   "cluster secret, key not on its allow list, or another protocol version)"
                                 : "initiator closed the connection during the handshake");
    }
    finish(nullptr, "handshake i/o failed: " + ec.message());
  }

  // --- responder: header, rest of msg1, msg2, msg3 + peer stream header, our stream header ---
  void responder_read_header() {
    read(kHandshakeHeaderBytes, [](auto self) {
      HandshakeHeader h = parse_handshake_header(self->in_);
      if (h.version != kProtocolVersion || h.reject) {
        // Tell the peer which version we speak before closing, so it can say why.
        std::string reason = "handshake: peer speaks another protocol version";
        try {
          self->hs_.read_msg1(self->in_);
        } catch (const HandshakeError& e) {
          reason = e.what();
        }
        self->write(self->hs_.reject_bytes(), [reason](auto s) { s->linger_then_finish(reason); });
        return;
      }
      self->read(kMsg1Bytes - kHandshakeHeaderBytes, [](auto s) {
        s->hs_.read_msg1(s->in_);
        s->in_.clear();
        s->write(s->hs_.write_msg2(), [](auto s2) {
          s2->read(kMsg3Bytes + kStreamHeaderBytes, [](auto s3) {
            std::span<const uint8_t> in(s3->in_);
            s3->hs_.read_msg3(in.first(kMsg3Bytes));
            s3->make_channel(in.subspan(kMsg3Bytes));
            auto hdr = s3->channel_->local_header();
            s3->write({hdr.begin(), hdr.end()}, [](auto s4) { s4->succeed(); });
          });
        });
      });
    });
  }

  // --- initiator: msg1 sent; read msg2 header, rest, send msg3 + our stream header, read theirs ---
  void initiator_read_header() {
    read(kHandshakeHeaderBytes, [](auto self) {
      HandshakeHeader h = parse_handshake_header(self->in_);
      if (h.reject || h.version != kProtocolVersion) {
        self->hs_.read_msg2(self->in_);  // throws the version reason
      }
      self->read(kMsg2Bytes - kHandshakeHeaderBytes, [](auto s) {
        s->hs_.read_msg2(s->in_);
        s->in_.clear();
        std::vector<uint8_t> out = s->hs_.write_msg3();
        s->keys_ = std::make_unique<SessionKeys>(s->hs_.keys());
        s->channel_ = std::make_unique<SecureChannel>(*s->keys_, s->opts_.max_frame_bytes);
        auto hdr = s->channel_->local_header();
        out.insert(out.end(), hdr.begin(), hdr.end());
        s->write(std::move(out), [](auto s2) {
          s2->read(kStreamHeaderBytes, [](auto s3) {
            if (!s3->channel_->accept_peer_header(s3->in_)) throw HandshakeError("handshake: bad stream header");
            s3->succeed();
          });
        });
      });
    });
  }

  // After a reject: stop sending, and read what the peer still sends until it
  // closes (or the handshake deadline), so our close is a FIN, not a reset that
  // could destroy the reject header before the peer reads it.
  void linger_then_finish(const std::string& reason) {
    std::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    drain(std::make_shared<std::array<uint8_t, 512>>(), reason, 0);
  }
  void drain(std::shared_ptr<std::array<uint8_t, 512>> buf, const std::string& reason, size_t total) {
    socket_.async_read_some(asio::buffer(*buf), [self = shared_from_this(), buf, reason, total](std::error_code ec,
                                                                                               size_t n) {
      if (ec || total + n > 4096) return self->finish(nullptr, reason);
      self->drain(buf, reason, total + n);
    });
  }

  void make_channel(std::span<const uint8_t> peer_header) {
    keys_ = std::make_unique<SessionKeys>(hs_.keys());
    channel_ = std::make_unique<SecureChannel>(*keys_, opts_.max_frame_bytes);
    if (!channel_->accept_peer_header(peer_header)) throw HandshakeError("handshake: bad stream header");
  }

  void succeed() {
    if (finished_) return;
    PublicKey peer = keys_->peer_static;
    finished_ = true;
    timer_.cancel();
    auto link = make_asio_link(std::move(socket_), std::move(channel_), peer, opts_);
    auto done = std::move(done_);
    done(link, "");
  }

  void finish(std::shared_ptr<Link> link, const std::string& error) {
    if (finished_) return;
    finished_ = true;
    timer_.cancel();
    std::error_code ec;
    socket_.close(ec);
    auto done = std::move(done_);
    done(std::move(link), error);
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  Handshake hs_;
  Handshake::Role role_;
  LinkOptions opts_;
  Done done_;
  std::vector<uint8_t> in_, out_;
  std::unique_ptr<SessionKeys> keys_;
  std::unique_ptr<SecureChannel> channel_;
  bool finished_ = false, timed_out_ = false;
};

HandshakeConfig make_config(const Credentials& c, const LinkOptions& o, std::optional<PublicKey> expected) {
  HandshakeConfig cfg;
  cfg.identity = c.identity;
  cfg.cluster_secret = c.cluster_secret;
  cfg.allow_list = c.allow_list;
  cfg.expected_peer = expected;
  cfg.plaintext_for_benchmark = o.insecure_plaintext_for_benchmark;
  return cfg;
}

std::string address_of(const tcp::socket& s) {
  std::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

struct Listener::State : std::enable_shared_from_this<Listener::State> {
  asio::io_context& io;
  asio::strand<asio::io_context::executor_type> strand;
  tcp::acceptor acceptor;
  Credentials creds;
  LinkOptions opts;
  OnLink on_link;
  OnReject on_reject;
  size_t pending = 0;
  bool closed = false;

  State(asio::io_context& io_, Credentials c, LinkOptions o, OnLink l, OnReject r)
      : io(io_), strand(asio::make_strand(io_)), acceptor(strand), creds(std::move(c)), opts(std::move(o)), on_link(std::move(l)),
        on_reject(std::move(r)) {}

  void reject(const std::string& addr, const std::string& reason) {
    log_line(opts, "refused peer " + addr + ": " + reason);
    if (on_reject) on_reject(addr, reason);
  }

  void accept() {
    acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](std::error_code ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted || self->closed) return;
      if (!ec) self->admit(std::move(s));
      self->accept();  // keep serving other peers whatever happened to this one
    });
  }

  void admit(tcp::socket s) {
    std::string addr = address_of(s);
    if (pending >= opts.max_pending_handshakes) {
      std::error_code ignore;
      s.close(ignore);
      return reject(addr, "too many handshakes in progress");
    }
    ++pending;
    auto done = [self = shared_from_this(), addr](std::shared_ptr<Link> link, const std::string& error) {
      asio::post(self->acceptor.get_executor(), [self, addr, link, error] {
        --self->pending;
        if (!link) return self->reject(addr, error);
        if (self->closed) return link->close("listener closed");
        if (self->on_link) self->on_link(link);
      });
    };
    std::make_shared<HandshakeSession>(std::move(s), Handshake::Role::responder, make_config(creds, opts, std::nullopt),
                                       opts, std::move(done))
        ->start();
  }
};

Listener::Listener(asio::io_context& io, const tcp::endpoint& endpoint, Credentials creds, LinkOptions opts,
                   OnLink on_link, OnReject on_reject)
    : state_(std::make_shared<State>(io, std::move(creds), std::move(opts), std::move(on_link), std::move(on_reject))) {
  auto& a = state_->acceptor;
  a.open(endpoint.protocol());
  a.set_option(tcp::acceptor::reuse_address(true));
  a.bind(endpoint);
  a.listen();
  port_ = a.local_endpoint().port();
  asio::post(a.get_executor(), [s = state_] { s->accept(); });
}

Listener::~Listener() { close(); }

uint16_t Listener::port() const { return port_; }

void Listener::close() {
  auto shut = [](State& s) {
    s.closed = true;
    std::error_code ec;
    s.acceptor.close(ec);
    s.on_link = nullptr;
    s.on_reject = nullptr;
  };
  if (state_->strand.running_in_this_thread() || state_->io.stopped()) return shut(*state_);
  auto closed = std::make_shared<std::promise<void>>();
  auto fut = closed->get_future();
  asio::post(state_->strand, [s = state_, closed, shut] {
    shut(*s);
    closed->set_value();
  });
  // If no thread runs the context, nothing can race us: close directly.
  if (fut.wait_for(std::chrono::seconds(2)) != std::future_status::ready) shut(*state_);
}

void connect(asio::io_context& io, const std::string& host, uint16_t port, Credentials creds, LinkOptions opts,
             OnConnect done, std::optional<PublicKey> expected_peer) {
  auto resolver = std::make_shared<tcp::resolver>(io);
  resolver->async_resolve(
      host, std::to_string(port),
      [&io, resolver, creds = std::move(creds), opts = std::move(opts), done = std::move(done), expected_peer](
          std::error_code ec, tcp::resolver::results_type results) mutable {
        if (ec) return done(nullptr, "cannot resolve peer address: " + ec.message());
        auto socket = std::make_shared<tcp::socket>(asio::make_strand(io));
        // The TCP connect shares the handshake's deadline: a peer that is gone from the network
        // (SYNs unanswered) would otherwise hold the dialler for the kernel's minutes of retries.
        auto timer = std::make_shared<asio::steady_timer>(socket->get_executor());
        auto timed_out = std::make_shared<bool>(false);
        timer->expires_after(opts.handshake_timeout);
        timer->async_wait([socket, timed_out](std::error_code e) {
          if (e) return;
          *timed_out = true;
          std::error_code ignore;
          socket->close(ignore);
        });
        asio::async_connect(*socket, results,
                            [socket, timer, timed_out, creds = std::move(creds), opts = std::move(opts),
                             done = std::move(done), expected_peer](std::error_code ec2, const tcp::endpoint&) mutable {
                              timer->cancel();
                              if (ec2 && *timed_out)
                                return done(nullptr, "cannot connect: no answer within " +
                                                         std::to_string(opts.handshake_timeout.count()) + " ms");
                              if (ec2) return done(nullptr, "cannot connect: " + ec2.message());
                              HandshakeConfig cfg = make_config(creds, opts, expected_peer);
                              std::make_shared<HandshakeSession>(std::move(*socket), Handshake::Role::initiator,
                                                                 std::move(cfg), opts, std::move(done))
                                  ->start();
                            });
      });
}

std::shared_ptr<Link> connect_blocking(asio::io_context& io, const std::string& host, uint16_t port, Credentials creds,
                                       LinkOptions opts, std::optional<PublicKey> expected_peer) {
  auto result = std::make_shared<std::promise<std::pair<std::shared_ptr<Link>, std::string>>>();
  auto fut = result->get_future();
  connect(
      io, host, port, std::move(creds), std::move(opts),
      [result](std::shared_ptr<Link> link, const std::string& error) { result->set_value({std::move(link), error}); },
      expected_peer);
  auto [link, error] = fut.get();
  if (!link) throw std::runtime_error("connect to " + host + ":" + std::to_string(port) + " failed: " + error);
  return link;
}

}  // namespace zen::transport
