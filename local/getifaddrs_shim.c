/* Janus skips interfaces flagged IFF_LOOPBACK when it gathers ICE candidates, before its
 * ice_enforce_list applies: on a loopback-only host it would offer no candidate at all.
 * Preloaded into Janus's process only (local/janus.py), this clears the flag. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>

int getifaddrs(struct ifaddrs **ifap) {
    static int (*real)(struct ifaddrs **) = 0;
    if (!real) real = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    int result = real(ifap);
    if (result == 0)
        for (struct ifaddrs *ifa = *ifap; ifa; ifa = ifa->ifa_next) ifa->ifa_flags &= ~IFF_LOOPBACK;
    return result;
}
