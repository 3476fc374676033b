#include "terrafuse/cache/disk_store.h"
#include <gtest/gtest.h>
TEST(DiskStoreTest, Placeholder) {}
