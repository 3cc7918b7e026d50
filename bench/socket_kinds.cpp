// socket_kinds: request/reply round trips per second over an AF_UNIX socket pair, SOCK_STREAM
// against SOCK_SEQPACKET, with frames the size of keychaind's UNWRAP request and reply, at
// pipeline depths 1 and 64. The server side does what keychaind's loop does with a stream:
// recv into a buffer, cut frames by their length prefix, reply; with SEQPACKET one recv is one
// frame. This decides which socket type the daemon uses (docs/performance.md).
//
//   socket_kinds [SECONDS per case, default 2]
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kRequest = 110;  // an UNWRAP request: header, wrapped data key, context
constexpr size_t kReply = 48;     // its reply: header and the 32-byte data key

void put_len(uint8_t* p, uint32_t n) {
    p[0] = static_cast<uint8_t>(n >> 24);
    p[1] = static_cast<uint8_t>(n >> 16);
    p[2] = static_cast<uint8_t>(n >> 8);
    p[3] = static_cast<uint8_t>(n);
}
uint32_t get_len(const uint8_t* p) {
    return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// Answers every frame with a reply frame until the peer closes.
void serve(int fd, bool stream) {
    std::vector<uint8_t> in(65536);
    size_t have = 0;
    uint8_t reply[kReply] = {};
    put_len(reply, kReply - 4);
    std::vector<uint8_t> out;
    for (;;) {
        const ssize_t n = recv(fd, in.data() + have, in.size() - have, 0);
        if (n <= 0) return;
        out.clear();
        if (stream) {
            have += static_cast<size_t>(n);
            size_t at = 0;
            while (have - at >= 4 && have - at >= 4 + get_len(&in[at])) {
                at += 4 + get_len(&in[at]);
                out.insert(out.end(), reply, reply + kReply);
            }
            std::memmove(in.data(), in.data() + at, have - at);
            have -= at;
        }
        // A stream takes every reply of the batch in one send; SEQPACKET needs one per message.
        if (stream) {
            if (!out.empty() && send(fd, out.data(), out.size(), MSG_NOSIGNAL) < 0) return;
        } else if (send(fd, reply, kReply, MSG_NOSIGNAL) < 0) {
            return;
        }
    }
}

double round_trips(int type, unsigned depth, double seconds) {
    int sv[2];
    if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) != 0) {
        std::perror("socketpair");
        std::exit(1);
    }
    const bool stream = type == SOCK_STREAM;
    std::thread server(serve, sv[1], stream);
    uint8_t request[kRequest] = {};
    put_len(request, kRequest - 4);
    std::vector<uint8_t> batch;
    for (unsigned i = 0; i < depth; ++i) batch.insert(batch.end(), request, request + kRequest);
    std::vector<uint8_t> in(65536);
    unsigned long done = 0;
    const auto start = Clock::now();
    const auto until = start + std::chrono::duration<double>(seconds);
    while (Clock::now() < until) {
        if (stream) {
            if (send(sv[0], batch.data(), batch.size(), MSG_NOSIGNAL) < 0) break;
            size_t got = 0;
            while (got < depth * kReply) {
                const ssize_t n = recv(sv[0], in.data(), in.size(), 0);
                if (n <= 0) break;
                got += static_cast<size_t>(n);
            }
        } else {
            for (unsigned i = 0; i < depth; ++i)
                if (send(sv[0], request, kRequest, MSG_NOSIGNAL) < 0) break;
            for (unsigned i = 0; i < depth; ++i)
                if (recv(sv[0], in.data(), in.size(), 0) <= 0) break;
        }
        done += depth;
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    shutdown(sv[0], SHUT_RDWR);
    close(sv[0]);
    server.join();
    close(sv[1]);
    return static_cast<double>(done) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
    const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
    std::printf("| socket | depth | round trips/s |\n| --- | ---: | ---: |\n");
    for (const unsigned depth : {1u, 64u}) {
        for (const int type : {SOCK_STREAM, SOCK_SEQPACKET}) {
            std::printf("| %s | %u | %.0f |\n",
                        type == SOCK_STREAM ? "SOCK_STREAM" : "SOCK_SEQPACKET", depth,
                        round_trips(type, depth, seconds));
            std::fflush(stdout);
        }
    }
    return 0;
}
