#include "edge/common/c_ptr.h"

#include <gtest/gtest.h>

namespace edge {
namespace {

struct Thing {
  int* freed;
};

void FreeThing(Thing* t) {
  ++*t->freed;
  delete t;
}

TEST(CPtr, ReleasesItsObjectOnceWithTheGivenFunction) {
  int freed = 0;
  {
    CPtr<Thing, FreeThing> p(new Thing{&freed});
    CPtr<Thing, FreeThing> moved = std::move(p);
    EXPECT_EQ(freed, 0);
  }
  EXPECT_EQ(freed, 1);
}

}  // namespace
}  // namespace edge
