/* The production slate-agent: the core (agent/agent.h) with the session script as the only
 * session backend. The test guest's drawn desktop must never be linked in here. */
#include "agent/agent.h"

int main(int argc, char **argv)
{
        return agent_main(argc, argv, NULL);
}
