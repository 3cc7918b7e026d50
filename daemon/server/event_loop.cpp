// EventLoop on epoll. Registrations carry a generation so a reused fd number never receives an
// event meant for the fd it replaced within the same epoll_wait batch.
#include "server/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace keychaind {
namespace {
constexpr int kWakeFd = -2;
constexpr int kTimerFd = -3;
uint64_t pack(int fd, uint32_t gen) { return uint64_t{gen} << 32 | static_cast<uint32_t>(fd); }
[[noreturn]] void fail(const char* what) {
    throw std::runtime_error(std::string(what) + ": " + std::strerror(errno));
}
}  // namespace

EventLoop::EventLoop()
    : epoll_(epoll_create1(EPOLL_CLOEXEC)),
      wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      timer_(timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) {
    if (!epoll_ || !wake_ || !timer_) fail("event loop setup");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = pack(kWakeFd, 0);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) fail("epoll_ctl");
    ev.data.u64 = pack(kTimerFd, 0);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, timer_.get(), &ev) != 0) fail("epoll_ctl");
}

void EventLoop::add(int fd, uint32_t events, Handler h) {
    const uint32_t gen = next_generation_++;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = pack(fd, gen);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) fail("epoll_ctl add");
    handlers_[fd] = {gen, std::make_shared<Handler>(std::move(h))};
}

void EventLoop::modify(int fd, uint32_t events) {
    auto it = handlers_.find(fd);
    if (it == handlers_.end()) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = pack(fd, it->second.generation);
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev) != 0) fail("epoll_ctl mod");
}

void EventLoop::remove(int fd) {
    if (handlers_.erase(fd) != 0) epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

void EventLoop::post(std::function<void()> task) {
    {
        std::lock_guard lk(tasks_mu_);
        tasks_.push_back(std::move(task));
        // Tasks already waiting mean a wake-up is already due (drain_tasks reads the eventfd
        // before it takes the tasks): one write(2) per batch of completions, not per task.
        if (tasks_.size() > 1) return;
    }
    const uint64_t one = 1;
    ssize_t n = ::write(wake_.get(), &one, sizeof one);
    (void)n;  // EAGAIN means the counter is already non-zero: the loop will wake anyway
}

uint64_t EventLoop::add_timer(Clock::time_point when, std::function<void()> fn) {
    const uint64_t id = next_timer_++;
    timers_.emplace(when, std::make_pair(id, std::move(fn)));
    arm_timer();
    return id;
}

void EventLoop::cancel_timer(uint64_t id) {
    for (auto it = timers_.begin(); it != timers_.end(); ++it) {
        if (it->second.first == id) {
            timers_.erase(it);
            break;
        }
    }
    arm_timer();
}

void EventLoop::arm_timer() {
    itimerspec spec{};
    if (!timers_.empty()) {
        auto delta = timers_.begin()->first - Clock::now();
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(delta).count();
        if (ns < 1) ns = 1;  // zero would disarm
        spec.it_value.tv_sec = static_cast<time_t>(ns / 1000000000);
        spec.it_value.tv_nsec = static_cast<long>(ns % 1000000000);
    }
    timerfd_settime(timer_.get(), 0, &spec, nullptr);
}

void EventLoop::fire_timers() {
    uint64_t expirations;
    ssize_t n = ::read(timer_.get(), &expirations, sizeof expirations);
    (void)n;
    const auto now = Clock::now();
    std::vector<std::function<void()>> due;
    while (!timers_.empty() && timers_.begin()->first <= now) {
        due.push_back(std::move(timers_.begin()->second.second));
        timers_.erase(timers_.begin());
    }
    arm_timer();
    for (auto& fn : due) fn();
}

void EventLoop::drain_tasks() {
    uint64_t count;
    ssize_t n = ::read(wake_.get(), &count, sizeof count);
    (void)n;
    {
        std::lock_guard lk(tasks_mu_);
        running_tasks_.swap(tasks_);  // both vectors keep their capacity: no allocation per batch
    }
    struct Clear {  // a task that throws must not leave the batch to run again
        std::vector<std::function<void()>>& v;
        ~Clear() { v.clear(); }
    } clear{running_tasks_};
    for (auto& t : running_tasks_) t();
}

void EventLoop::run() {
    running_ = true;
    epoll_event events[64];
    while (running_) {
        int n = epoll_wait(epoll_.get(), events, 64, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            fail("epoll_wait");
        }
        for (int i = 0; i < n && running_; ++i) {
            const int fd = static_cast<int>(static_cast<uint32_t>(events[i].data.u64));
            const auto gen = static_cast<uint32_t>(events[i].data.u64 >> 32);
            if (fd == kWakeFd) {
                drain_tasks();
                continue;
            }
            if (fd == kTimerFd) {
                fire_timers();
                continue;
            }
            auto it = handlers_.find(fd);
            if (it == handlers_.end() || it->second.generation != gen) continue;
            auto handler = it->second.handler;  // the handler may remove itself
            (*handler)(events[i].events);
        }
        if (after_batch_) after_batch_();
    }
}

void EventLoop::stop() {
    post([this] { running_ = false; });
}

}  // namespace keychaind
