#include "terrafuse/cache/disk_store.h"
