/* The broker's permit table for agent messages: a guest may say only what its state allows. */
#include <criterion/criterion.h>
#include "broker/agentlink.h"

Test(agentlink, only_hello_before_hello)
{
        cr_assert(agent_link_permits(AGENT_LINK_AWAIT_HELLO, AGENT_MSG_HELLO));
        cr_assert_not(agent_link_permits(AGENT_LINK_AWAIT_HELLO, AGENT_MSG_READY));
        cr_assert_not(agent_link_permits(AGENT_LINK_AWAIT_HELLO, AGENT_MSG_HEARTBEAT));
        cr_assert_not(agent_link_permits(AGENT_LINK_AWAIT_HELLO, 0));
        cr_assert_not(agent_link_permits(AGENT_LINK_AWAIT_HELLO, 200));
}

Test(agentlink, ready_and_heartbeat_after_hello)
{
        cr_assert(agent_link_permits(AGENT_LINK_AWAIT_READY, AGENT_MSG_READY));
        cr_assert(agent_link_permits(AGENT_LINK_AWAIT_READY, AGENT_MSG_HEARTBEAT));
        cr_assert_not(agent_link_permits(AGENT_LINK_AWAIT_READY, AGENT_MSG_HELLO));
}

Test(agentlink, nothing_when_connecting_or_failed)
{
        for (unsigned t = 0; t < 256; t++) {
                cr_assert_not(agent_link_permits(AGENT_LINK_CONNECTING, (uint8_t)t));
                cr_assert_not(agent_link_permits(AGENT_LINK_FAILED, (uint8_t)t));
        }
        cr_assert_not(agent_link_permits(AGENT_LINK_READY, AGENT_MSG_READY));
}
