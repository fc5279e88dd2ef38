// The pipeline's rule episodes (pipeline.h, "Rules"): saved with their events, restored at
// construction.
#include <spdlog/spdlog.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "edge/agent/pipeline.h"
#include "pipeline_counters.h"

namespace edge::agent {

void Pipeline::SplitEpisodeChanges(const EpisodeChangeMap& changes,
                                   std::vector<StoredEpisode>& firing,
                                   std::vector<EpisodeKey>& resolved) {
  for (const auto& [key, episode] : changes) {
    if (episode) {
      firing.push_back(*episode);
    } else {
      resolved.push_back({key.first, key.second});
    }
  }
}

void Pipeline::SaveEpisodes() {
  if (episode_changes_.empty()) return;
  std::vector<StoredEpisode> firing;
  std::vector<EpisodeKey> resolved;
  SplitEpisodeChanges(episode_changes_, firing, resolved);
  if (Status s = store_.SaveEpisodes(firing, resolved); !s) {
    // Kept and saved with the next outbox commit; until then a restart could repeat or
    // miss these episodes' events.
    counters_->store_errors.Inc();
    spdlog::error("saving {} rule episodes failed (will retry): {}", episode_changes_.size(),
                  s.message());
    return;
  }
  episode_changes_.clear();
}

void Pipeline::RestoreEpisodes() {
  auto saved = store_.LoadEpisodes();
  if (!saved.ok()) {
    counters_->store_errors.Inc();
    spdlog::error("loading saved rule episodes failed: {}", saved.error());
    return;
  }
  if (saved->empty()) return;
  std::vector<rules::Episode> episodes;
  episodes.reserve(saved->size());
  for (StoredEpisode& e : *saved) {
    episodes.push_back(
        {std::move(e.rule), std::move(e.sensor), e.started_ms, e.last_ts_ms, e.last_value});
  }
  const size_t restored = engine_.RestoreEpisodes(episodes);
  spdlog::info("restored {} of {} firing rule episodes", restored, episodes.size());
  // Episodes of rules that no longer exist are dropped from the store.
  if (restored < episodes.size()) {
    std::vector<rules::Episode> firing = engine_.FiringEpisodes();
    std::set<std::pair<std::string, std::string>> live;
    for (const auto& e : firing) live.emplace(e.rule_id, e.sensor);
    for (const auto& e : episodes) {
      if (!live.count({e.rule_id, e.sensor})) episode_changes_[{e.rule_id, e.sensor}].reset();
    }
    SaveEpisodes();
  }
}

}  // namespace edge::agent
