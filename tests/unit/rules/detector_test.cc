#include "edge/rules/detector.h"

#include <gtest/gtest.h>

namespace edge::rules {
namespace {

RuleParams AboveWithClear(double above, double clear) {
  ThresholdParams t;
  t.above = above;
  t.clear = clear;
  return t;
}

TEST(ThresholdDetector, ClearLevelAppliesOnlyWhileFiring) {
  const RuleParams params = AboveWithClear(90, 85);
  DetectorState state = MakeDetectorState(params);
  EXPECT_FALSE(ConditionHolds(params, state, 0, 88, /*firing=*/false));
  EXPECT_TRUE(ConditionHolds(params, state, 0, 88, /*firing=*/true));
  EXPECT_FALSE(ConditionHolds(params, state, 0, 85, /*firing=*/true));
}

TEST(ThresholdDetector, WithoutClearFiringChangesNothing) {
  ThresholdParams t;
  t.below = 10;
  const RuleParams params = t;
  DetectorState state = MakeDetectorState(params);
  EXPECT_TRUE(ConditionHolds(params, state, 0, 9, /*firing=*/true));
  EXPECT_FALSE(ConditionHolds(params, state, 0, 10, /*firing=*/true));
  EXPECT_FALSE(ConditionHolds(params, state, 0, 10, /*firing=*/false));
}

TEST(ThresholdDetector, HoldTimeIsTheForDuration) {
  ThresholdParams t;
  t.above = 1;
  t.for_ms = 30'000;
  EXPECT_EQ(HoldMs(t), 30'000);
}

TEST(ThresholdDetector, NoBoundMeansConditionNeverHolds) {
  const RuleParams params = ThresholdParams{};
  DetectorState state = MakeDetectorState(params);
  EXPECT_FALSE(ConditionHolds(params, state, 0, 1e300, /*firing=*/false));
}

}  // namespace
}  // namespace edge::rules
