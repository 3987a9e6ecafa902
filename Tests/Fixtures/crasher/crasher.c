/* Dereferences NULL in conn_open: the plugin that crashes a worker in --isolate's tests
 * (Tests/CynicCLITests/IsolateTests.swift) and in bench/isolate_restart.py. Built with
 * -DROUND=N, each build has other bytes: a new version of the plugin. */
#include <cynic/plugin.h>

#ifndef ROUND
#define ROUND 1
#endif

static void *conn_open(void *instance, cynic_conn *conn) {
    (void)instance;
    (void)conn;
    volatile int *nothing = 0;
    *nothing = ROUND;
    return 0;
}

static const cynic_plugin plugin = {
    .abi_version = CYNIC_ABI_VERSION, .struct_size = sizeof(cynic_plugin), .name = "crasher",
    .conn_open = conn_open,
};

CYNIC_EXPORT const cynic_plugin *cynic_plugin_entry(void) { return &plugin; }
