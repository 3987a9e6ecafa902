#include <cynic/plugin.h>
