// A client that connects and then execs another program on the same connection, for the test that
// the daemon keeps the identity taken at connect.
//   peer_exec_client connect SOCKET NEXT   connect, send STATUS and read its reply (the daemon has
//                                          taken the identity by then), exec NEXT as "NEXT use FD"
//   peer_exec_client use FD                GET_PUBLIC label "web-ec" on FD; prints "ok" or
//                                          "error CODE MESSAGE"
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "protocol/message.h"
#include "raw_client.h"

using namespace keychaind;

int main(int argc, char** argv) {
    if (argc == 4 && std::strcmp(argv[1], "connect") == 0) {
        const int fd = socket(AF_UNIX, SOCK_STREAM, 0);  // no CLOEXEC: NEXT inherits it
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", argv[2]);
        if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            std::perror("connect");
            return 2;
        }
        // The identity is taken when the daemon accepts, which may come after connect() returns:
        // a reply shows it has been taken.
        const WipingBuffer status = wire::MessageBuilder(static_cast<uint8_t>(wire::Opcode::Status), 7).finish();
        if (write(fd, status.data(), status.size()) != static_cast<ssize_t>(status.size())) return 2;
        wire::FrameReader reader(1 << 20);
        uint8_t buf[8192];
        for (std::optional<WipingBuffer> reply; !reply;) {
            const ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0) return 2;
            reader.append({buf, static_cast<size_t>(n)});
            reply = reader.next();
        }
        const std::string fd_text = std::to_string(fd);
        execl(argv[3], argv[3], "use", fd_text.c_str(), nullptr);
        std::perror("exec");
        return 3;
    }
    if (argc == 3 && std::strcmp(argv[1], "use") == 0) {
        const int fd = std::stoi(argv[2]);
        wire::MessageBuilder b(static_cast<uint8_t>(wire::Opcode::GetPublic), 1);
        b.str(wire::Tag::Label, "web-ec");
        const WipingBuffer frame = b.finish();
        if (write(fd, frame.data(), frame.size()) != static_cast<ssize_t>(frame.size())) return 4;
        wire::FrameReader reader(1 << 20);
        uint8_t buf[8192];
        for (;;) {
            const ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0) return 5;
            reader.append({buf, static_cast<size_t>(n)});
            if (auto body = reader.next()) {
                const wire::Message m = wire::decode(*body);
                if (m.opcode != static_cast<uint8_t>(wire::Opcode::Error)) {
                    std::puts("ok");
                } else {
                    std::printf("error %u %s\n", m.get_u8(wire::Tag::ErrorCode).value_or(0),
                                std::string(m.get_string(wire::Tag::Message).value_or("")).c_str());
                }
                return 0;
            }
        }
    }
    std::fprintf(stderr, "usage: peer_exec_client connect SOCKET NEXT | use FD\n");
    return 1;
}
