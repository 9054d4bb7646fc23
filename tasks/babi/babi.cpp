// bAbI world simulator: see babi.hpp. World logic follows the bAbI task definitions (valid actions only,
// questions answerable from the statements so far); surface forms follow the released v1.2 data.
#include "tasks/babi/babi.hpp"
#include "core/error.hpp"
#include "core/rng.hpp"
#include "tasks/catalog.hpp"
#include "tasks/metrics.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <set>

namespace lctx::babi {

namespace {

using Strs = std::vector<std::string>;

const Strs kMove = {"went to", "went back to", "journeyed to", "travelled to", "moved to"};
const Strs kGet = {"got", "grabbed", "picked up", "took"};
const Strs kDrop = {"dropped", "discarded", "put down", "left"};
const Strs kGive = {"gave", "handed", "passed"};

const Strs kBasicActors = {"John", "Mary", "Sandra", "Daniel"};
const std::vector<bool> kBasicMale = {true, false, false, true};
const Strs kBasicLocs = {"bedroom", "kitchen", "garden", "hallway", "bathroom", "office"};
const Strs kObjects = {"apple", "football", "milk"};
const Strs kTimeActors = {"Bill", "Fred", "Julie", "Mary"};
const Strs kTimeLocs = {"bedroom", "cinema", "kitchen", "office", "park", "school"};


// Story under construction.
struct Builder {
  Story lines;
  int say(std::string s) {
    lines.push_back(Line{std::move(s), false, "", {}});
    return static_cast<int>(lines.size()) - 1;
  }
  void ask(std::string q, std::string a, std::vector<int> support) {
    std::sort(support.begin(), support.end());
    support.erase(std::unique(support.begin(), support.end()), support.end());
    lines.push_back(Line{std::move(q), true, std::move(a), std::move(support)});
  }
  int num_questions() const {
    int n = 0;
    for (auto& l : lines) n += l.is_question;
    return n;
  }
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string cap(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}
int pick(Rng& r, int n) { return static_cast<int>(r.below(static_cast<uint64_t>(n))); }
const std::string& pick(Rng& r, const Strs& v) { return v[r.below(v.size())]; }

// ---------------------------------------------------------------------------------------------------------
// The object world of qa2, qa3, qa5, qa7, qa8: actors move between locations, get, drop and give objects.
// The true state drives which actions are valid; the reader's knowledge (what the statements so far entail)
// drives the questions.
struct ObjectWorld {
  Strs actors;
  int nl = 6, no = 3;
  std::vector<int> aloc, holder, oloc;             // true state (holder -1: object lies at oloc)
  std::vector<int> known_loc, known_loc_line;      // reader: actor location from its last move (-1 unknown)
  std::vector<int> prev_loc, prev_loc_line;        // reader: the move before that
  std::vector<int> hold_line;                      // line where the current holder took it (get/give)
  std::vector<int> drop_known_loc, drop_lines_a, drop_lines_b;  // object lying at a known place
  std::vector<std::vector<std::pair<int, std::vector<int>>>> history;  // known location changes per object

  ObjectWorld(const Strs& names, Rng& r) : actors(names) {
    int na = static_cast<int>(actors.size());
    for (int a = 0; a < na; ++a) aloc.push_back(pick(r, nl));
    for (int o = 0; o < no; ++o) {
      holder.push_back(-1);
      oloc.push_back(pick(r, nl));
    }
    known_loc.assign(na, -1);
    known_loc_line.assign(na, -1);
    prev_loc.assign(na, -1);
    prev_loc_line.assign(na, -1);
    hold_line.assign(no, -1);
    drop_known_loc.assign(no, -1);
    drop_lines_a.assign(no, -1);
    drop_lines_b.assign(no, -1);
    history.resize(no);
  }
  int na() const { return static_cast<int>(actors.size()); }

  // Known location of object o and the lines that establish it (-1: unknown).
  int object_known(int o, std::vector<int>* support) const {
    if (holder[o] >= 0) {
      int h = holder[o];
      if (known_loc[h] < 0) return -1;
      if (support) *support = {hold_line[o], known_loc_line[h]};
      return known_loc[h];
    }
    if (drop_known_loc[o] < 0) return -1;
    if (support) *support = {drop_lines_a[o], drop_lines_b[o]};
    return drop_known_loc[o];
  }
  void update_history() {
    for (int o = 0; o < no; ++o) {
      std::vector<int> sup;
      int l = object_known(o, &sup);
      if (l >= 0 && (history[o].empty() || history[o].back().first != l)) history[o].push_back({l, sup});
    }
  }

  // Actions; each returns the statement text after updating state.
  std::string teleport(Rng& r, int a, int l, int line) {
    aloc[a] = l;
    prev_loc[a] = known_loc[a];
    prev_loc_line[a] = known_loc_line[a];
    known_loc[a] = l;
    known_loc_line[a] = line;
    for (int o = 0; o < no; ++o)
      if (holder[o] == a) oloc[o] = l;
    return actors[a] + " " + pick(r, kMove) + " the " + kBasicLocs[l] + ".";
  }
  std::string get(Rng& r, int a, int o, int line) {
    holder[o] = a;
    hold_line[o] = line;
    drop_known_loc[o] = -1;
    return actors[a] + " " + pick(r, kGet) + " the " + kObjects[o] + (r.bernoulli(0.5) ? " there." : ".");
  }
  std::string drop(Rng& r, int a, int o, int line) {
    holder[o] = -1;
    oloc[o] = aloc[a];
    if (known_loc[a] >= 0) {
      drop_known_loc[o] = known_loc[a];
      drop_lines_a[o] = line;
      drop_lines_b[o] = known_loc_line[a];
    } else {
      drop_known_loc[o] = -1;
    }
    return actors[a] + " " + pick(r, kDrop) + " the " + kObjects[o] + (r.bernoulli(0.5) ? " there." : ".");
  }
  std::string give(Rng& r, int a, int o, int b, int line) {
    holder[o] = b;
    hold_line[o] = line;
    return actors[a] + " " + pick(r, kGive) + " the " + kObjects[o] + " to " + actors[b] + ".";
  }

  // Valid argument lists.
  std::vector<std::pair<int, int>> gets() const {
    std::vector<std::pair<int, int>> v;
    for (int a = 0; a < na(); ++a)
      for (int o = 0; o < no; ++o)
        if (holder[o] < 0 && oloc[o] == aloc[a]) v.push_back({a, o});
    return v;
  }
  std::vector<std::pair<int, int>> drops() const {
    std::vector<std::pair<int, int>> v;
    for (int o = 0; o < no; ++o)
      if (holder[o] >= 0) v.push_back({holder[o], o});
    return v;
  }
  struct Give { int a, o, b; };
  std::vector<Give> gives() const {
    std::vector<Give> v;
    for (int o = 0; o < no; ++o)
      if (holder[o] >= 0)
        for (int b = 0; b < na(); ++b)
          if (b != holder[o] && aloc[b] == aloc[holder[o]]) v.push_back({holder[o], o, b});
    return v;
  }
};

enum Act { kTeleport, kGetA, kDropA, kGiveA };

// One random valid action from `allowed` (the action kind is drawn first, then its arguments, as bAbI
// does). `filter` may reject give arguments (qa5 distractors). Returns the action kind performed.
template <class F>
Act random_action(ObjectWorld& w, Rng& r, const std::vector<Act>& allowed, Builder& b, F give_ok,
                  int* who = nullptr, ObjectWorld::Give* gv = nullptr) {
  for (;;) {
    Act act = allowed[r.below(allowed.size())];
    int line = static_cast<int>(b.lines.size());
    if (act == kTeleport) {
      int a = pick(r, w.na());
      int l = pick(r, w.nl - 1);
      if (l >= w.aloc[a]) ++l;
      b.say(w.teleport(r, a, l, line));
      if (who) *who = a;
      return act;
    }
    if (act == kGetA) {
      auto v = w.gets();
      if (v.empty()) continue;
      auto [a, o] = v[r.below(v.size())];
      b.say(w.get(r, a, o, line));
      if (who) *who = a;
      return act;
    }
    if (act == kDropA) {
      auto v = w.drops();
      if (v.empty()) continue;
      auto [a, o] = v[r.below(v.size())];
      b.say(w.drop(r, a, o, line));
      if (who) *who = a;
      return act;
    }
    auto all = w.gives();
    std::vector<ObjectWorld::Give> v;
    for (auto& g : all)
      if (give_ok(g)) v.push_back(g);
    if (v.empty()) continue;
    auto g = v[r.below(v.size())];
    b.say(w.give(r, g.a, g.o, g.b, line));
    if (who) *who = g.a;
    if (gv) *gv = g;
    return act;
  }
}
const auto kAnyGive = [](const ObjectWorld::Give&) { return true; };

// ---------------------------------------------------------------------------------------------------------
// qa1 / qa6: two moves, then a question, five times.
Story where_is_actor(Rng& r, bool yes_no) {
  Builder b;
  int na = 4;
  std::vector<int> loc(na, -1), line(na, -1);
  for (int q = 0; q < 5; ++q) {
    for (int k = 0; k < 2; ++k) {
      int a = pick(r, na);
      int l = pick(r, 6);
      while (l == loc[a]) l = pick(r, 6);
      loc[a] = l;
      line[a] = b.say(kBasicActors[a] + " " + pick(r, kMove) + " the " + kBasicLocs[l] + ".");
    }
    std::vector<int> known;
    for (int a = 0; a < na; ++a)
      if (loc[a] >= 0) known.push_back(a);
    int a = known[r.below(known.size())];
    if (!yes_no) {
      b.ask("Where is " + kBasicActors[a] + "? ", kBasicLocs[loc[a]], {line[a]});
    } else {
      bool yes = r.bernoulli(0.5);
      int l = loc[a];
      if (!yes) {
        l = pick(r, 5);
        if (l >= loc[a]) ++l;
      }
      b.ask("Is " + kBasicActors[a] + " in the " + kBasicLocs[l] + "? ", yes ? "yes" : "no", {line[a]});
    }
  }
  return b.lines;
}

// qa2: where is the object; qa3: where was the object before its current place.
Story where_object(Rng& r, bool was) {
  Builder b;
  ObjectWorld w(kBasicActors, r);
  int since = 0;
  while (b.num_questions() < 5) {
    random_action(w, r, {kGetA, kDropA, kTeleport}, b, kAnyGive);
    w.update_history();
    ++since;
    if (since > 2 && r.bernoulli(0.5)) {
      std::vector<int> cand;
      for (int o = 0; o < w.no; ++o) {
        if (!was) {
          if (w.object_known(o, nullptr) >= 0) cand.push_back(o);
        } else {
          auto& h = w.history[o];
          if (h.size() < 2) continue;
          int n = 0;
          for (auto& e : h) n += e.first == h.back().first;
          if (n == 1) cand.push_back(o);
        }
      }
      if (cand.empty()) continue;
      int o = cand[r.below(cand.size())];
      if (!was) {
        std::vector<int> sup;
        int l = w.object_known(o, &sup);
        b.ask("Where is the " + kObjects[o] + "? ", kBasicLocs[l], sup);
      } else {
        auto& h = w.history[o];
        auto& cur = h.back();
        auto& prev = h[h.size() - 2];
        std::vector<int> sup = prev.second;
        sup.insert(sup.end(), cur.second.begin(), cur.second.end());
        // Carried there by its holder: the holder's arrival at the earlier place, the pick-up and the last move.
        int hd = w.holder[o];
        if (hd >= 0 && w.prev_loc[hd] == prev.first && w.prev_loc_line[hd] < w.hold_line[o] &&
            w.hold_line[o] < w.known_loc_line[hd])
          sup = {w.prev_loc_line[hd], w.hold_line[o], w.known_loc_line[hd]};
        b.ask("Where was the " + kObjects[o] + " before the " + kBasicLocs[cur.first] + "? ", kBasicLocs[prev.first],
              sup);
      }
      since = 0;
    }
  }
  return b.lines;
}

// qa4: two direction facts about three places in a line, one question.
Story is_dir(Rng& r) {
  Builder b;
  auto idx = r.sample_indices(6, 3);
  bool ns = r.bernoulli(0.5);
  // idx[0] is north (east) of idx[1], which is north (east) of idx[2].
  const std::string fwd = ns ? "north" : "east", back = ns ? "south" : "west";
  struct Rel { int x, y; std::string dir; int line; };  // "The x is dir of the y."
  std::vector<Rel> rels;
  for (int k = 0; k < 2; ++k) {
    int hi = static_cast<int>(idx[k]), lo = static_cast<int>(idx[k + 1]);
    Rel rel = r.bernoulli(0.5) ? Rel{hi, lo, fwd, 0} : Rel{lo, hi, back, 0};
    rels.push_back(rel);
  }
  if (r.bernoulli(0.5)) std::swap(rels[0], rels[1]);
  for (auto& rel : rels) rel.line = b.say("The " + kBasicLocs[rel.x] + " is " + rel.dir + " of the " + kBasicLocs[rel.y] + ".");
  const Rel& q = rels[r.below(2)];
  // Ask with the fact's own direction or its inverse, subject first or object first.
  bool inverse = r.bernoulli(0.5);
  int x = inverse ? q.y : q.x, y = inverse ? q.x : q.y;
  std::string dir = inverse ? (q.dir == fwd ? back : fwd) : q.dir;
  if (r.bernoulli(0.5))
    b.ask("What is " + dir + " of the " + kBasicLocs[y] + "?", kBasicLocs[x], {q.line});
  else
    b.ask("What is the " + kBasicLocs[x] + " " + dir + " of?", kBasicLocs[y], {q.line});
  return b.lines;
}

// qa5: after a give, up to five distractor clauses, then a question about that give.
Story who_what_gave(Rng& r) {
  static const Strs actors = {"Bill", "Fred", "Jeff", "Mary"};
  Builder b;
  ObjectWorld w(actors, r);
  int since = 0;
  int guard = 0;
  while (b.num_questions() < 5 && ++guard < 100000) {
    ObjectWorld::Give g{};
    int line = static_cast<int>(b.lines.size());
    Act act = random_action(w, r, {kGetA, kGiveA, kTeleport}, b, kAnyGive, nullptr, &g);
    ++since;
    if (act != kGiveA || since <= 2) continue;
    int nd = static_cast<int>(r.range(0, 5));
    for (int k = 0; k < nd; ++k)
      random_action(w, r, {kGetA, kGiveA, kTeleport}, b, [&](const ObjectWorld::Give& d) {
        return d.o != g.o && !(d.a == g.a && d.b == g.b);
      });
    const std::string &A = actors[g.a], &B = actors[g.b], &O = kObjects[g.o];
    switch (pick(r, 5)) {
      case 0: b.ask("What did " + A + " give to " + B + "? ", O, {line}); break;
      case 1: b.ask("Who gave the " + O + " to " + B + "? ", A, {line}); break;
      case 2: b.ask("Who did " + A + " give the " + O + " to? ", B, {line}); break;
      case 3: b.ask("Who received the " + O + "? ", B, {line}); break;
      default: b.ask("Who gave the " + O + "? ", A, {line}); break;
    }
    since = 0;
  }
  return b.lines;
}

// qa7 / qa8: how many objects / which objects an actor carries.
Story counting(Rng& r, bool listing) {
  static const Strs numbers = {"none", "one", "two", "three"};
  Builder b;
  ObjectWorld w(kBasicActors, r);
  std::set<int> known;
  std::vector<std::vector<int>> support(4);
  int i = 0, first = -1;
  while (first < 0 || i - first < 8) {
    int line = static_cast<int>(b.lines.size());
    int who = -1;
    ObjectWorld::Give g{-1, -1, -1};
    Act act = random_action(w, r, {kGetA, kGiveA, kTeleport, kDropA}, b, kAnyGive, &who, &g);
    ++i;
    if (act != kTeleport) {
      known.insert(who);
      support[who].push_back(line);
      if (act == kGiveA) {
        known.insert(g.b);
        support[g.b].push_back(line);
      }
    }
    if ((first < 0 && i > 1 && !known.empty()) || (first >= 0 && (i - first) % 2 == 0)) {
      if (first < 0) first = i;
      std::vector<int> ks(known.begin(), known.end());
      int a = ks[r.below(ks.size())];
      Strs held;
      for (int o = 0; o < w.no; ++o)
        if (w.holder[o] == a) held.push_back(kObjects[o]);
      if (!listing) {
        b.ask("How many objects is " + kBasicActors[a] + " carrying? ", numbers[held.size()], support[a]);
      } else {
        std::sort(held.begin(), held.end());
        std::string ans;
        for (auto& h : held) ans += (ans.empty() ? "" : ",") + h;
        b.ask("What is " + kBasicActors[a] + " carrying? ", held.empty() ? "nothing" : ans, support[a]);
      }
    }
  }
  return b.lines;
}

// qa9: negation. State per actor: in L (positive) or not in L (negative).
Story negation(Rng& r) {
  Builder b;
  std::vector<int> truth(4), state(4, -1), line(4, -1);
  std::vector<bool> positive(4, true);
  for (int a = 0; a < 4; ++a) truth[a] = pick(r, 6);
  for (int q = 0; q < 5; ++q) {
    for (int k = 0; k < 2; ++k) {
      int a = pick(r, 4);
      const std::string& X = kBasicActors[a];
      int kind = pick(r, 4);
      if (kind == 3 && !(state[a] >= 0 && positive[a])) kind = pick(r, 3);
      int l = pick(r, 5);
      if (l >= truth[a]) ++l;  // a place other than the true one
      if (kind == 0) {
        truth[a] = l, state[a] = l, positive[a] = true;
        line[a] = b.say(X + " " + pick(r, kMove) + " the " + kBasicLocs[l] + ".");
      } else if (kind == 1) {
        truth[a] = l, state[a] = l, positive[a] = true;
        line[a] = b.say(X + " is in the " + kBasicLocs[l] + ".");
      } else if (kind == 2) {
        state[a] = l, positive[a] = false;
        line[a] = b.say(X + " is not in the " + kBasicLocs[l] + ".");
      } else {
        int was = state[a];
        truth[a] = l;  // somewhere else, unknown to the reader
        state[a] = was, positive[a] = false;
        line[a] = b.say(X + " is no longer in the " + kBasicLocs[was] + ".");
      }
    }
    std::vector<int> known;
    for (int a = 0; a < 4; ++a)
      if (state[a] >= 0) known.push_back(a);
    int a = known[r.below(known.size())];
    int l = state[a];
    std::string ans = "no";
    if (positive[a]) {
      if (r.bernoulli(0.5)) {
        ans = "yes";
      } else {
        l = pick(r, 5);
        if (l >= state[a]) ++l;
      }
    }
    b.ask("Is " + kBasicActors[a] + " in the " + kBasicLocs[l] + "? ", ans, {line[a]});
  }
  return b.lines;
}

// qa10: indefinite knowledge ("either in the A or the B").
Story indefinite(Rng& r) {
  Builder b;
  std::vector<int> truth(4), la(4, -1), lb(4, -1), line(4, -1);
  for (int a = 0; a < 4; ++a) truth[a] = pick(r, 6);
  for (int q = 0; q < 5; ++q) {
    for (int k = 0; k < 2; ++k) {
      int a = pick(r, 4);
      const std::string& X = kTimeActors[a];
      int l = pick(r, 5);
      if (l >= truth[a]) ++l;
      truth[a] = l;
      if (r.bernoulli(0.5)) {
        la[a] = l, lb[a] = -1;
        line[a] = b.say(X + " " + pick(r, kMove) + " the " + kTimeLocs[l] + ".");
      } else {
        int o = pick(r, 5);
        if (o >= l) ++o;
        if (r.bernoulli(0.5)) std::swap(l, o);
        la[a] = l, lb[a] = o;
        line[a] = b.say(X + " is either in the " + kTimeLocs[l] + " or the " + kTimeLocs[o] + ".");
      }
    }
    std::vector<int> known;
    for (int a = 0; a < 4; ++a)
      if (la[a] >= 0) known.push_back(a);
    int a = known[r.below(known.size())];
    std::string ans;
    int l;
    if (r.bernoulli(0.5)) {
      l = lb[a] < 0 ? la[a] : (r.bernoulli(0.5) ? la[a] : lb[a]);
      ans = lb[a] < 0 ? "yes" : "maybe";
    } else {
      do l = pick(r, 6);
      while (l == la[a] || l == lb[a]);
      ans = "no";
    }
    b.ask("Is " + kTimeActors[a] + " in the " + kTimeLocs[l] + "? ", ans, {line[a]});
  }
  return b.lines;
}

// qa11: a move, then a pronoun move ("After that he went to the garden."), then a question.
Story basic_coreference(Rng& r) {
  static const Strs adverbs = {"Then", "After that", "Following that", "Afterwards"};
  Builder b;
  std::vector<int> loc(4, -1);
  std::vector<std::vector<int>> sup(4);
  for (int q = 0; q < 5; ++q) {
    int a = pick(r, 4);
    int l1 = pick(r, 6);
    while (l1 == loc[a]) l1 = pick(r, 6);
    int first = b.say(kBasicActors[a] + " " + pick(r, kMove) + " the " + kBasicLocs[l1] + ".");
    int l2 = pick(r, 5);
    if (l2 >= l1) ++l2;
    int second = b.say(pick(r, adverbs) + " " + (kBasicMale[a] ? "he" : "she") + " " + pick(r, kMove) + " the " +
                       kBasicLocs[l2] + ".");
    loc[a] = l2;
    sup[a] = {first, second};
    std::vector<int> known;
    for (int x = 0; x < 4; ++x)
      if (loc[x] >= 0) known.push_back(x);
    int x = known[r.below(known.size())];
    b.ask("Where is " + kBasicActors[x] + "? ", kBasicLocs[loc[x]], sup[x]);
  }
  return b.lines;
}

// qa12 (conjunction) and qa13 (compound coreference).
Story conjunction(Rng& r, bool compound) {
  static const Strs adverbs = {"Then", "After that", "Following that"};
  Builder b;
  std::vector<int> loc(4, -1);
  std::vector<std::vector<int>> sup(4);
  for (int q = 0; q < 5; ++q) {
    auto p = r.sample_indices(4, 2);
    int a = static_cast<int>(p[0]), c = static_cast<int>(p[1]);
    int l1 = pick(r, 6);
    int first = b.say(kBasicActors[a] + " and " + kBasicActors[c] + " " + pick(r, kMove) + " the " + kBasicLocs[l1] + ".");
    if (compound) {
      int l2 = pick(r, 5);
      if (l2 >= l1) ++l2;
      int second = b.say(pick(r, adverbs) + " they " + pick(r, kMove) + " the " + kBasicLocs[l2] + ".");
      loc[a] = loc[c] = l2;
      sup[a] = sup[c] = {first, second};
    } else {
      loc[a] = loc[c] = l1;
      sup[a] = sup[c] = {first};
      auto p2 = r.sample_indices(4, 2);
      int d = static_cast<int>(p2[0]), e = static_cast<int>(p2[1]);
      int l2 = pick(r, 6);
      int second = b.say(kBasicActors[d] + " and " + kBasicActors[e] + " " + pick(r, kMove) + " the " + kBasicLocs[l2] + ".");
      loc[d] = loc[e] = l2;
      sup[d] = sup[e] = {second};
    }
    std::vector<int> known;
    for (int x = 0; x < 4; ++x)
      if (loc[x] >= 0) known.push_back(x);
    int x = known[r.below(known.size())];
    b.ask("Where is " + kBasicActors[x] + "? ", kBasicLocs[loc[x]], sup[x]);
  }
  return b.lines;
}

// qa14: time reasoning. Each actor visits distinct places at four times of day; facts come in random order.
Story time_reasoning(Rng& r) {
  static const Strs times = {"yesterday", "this morning", "this afternoon", "this evening"};
  Builder b;
  std::vector<std::vector<size_t>> sched(4);
  for (int a = 0; a < 4; ++a) sched[a] = r.sample_indices(6, 4);
  std::vector<std::pair<int, int>> todo;  // (actor, time)
  for (int a = 0; a < 4; ++a)
    for (int t = 0; t < 4; ++t) todo.push_back({a, t});
  r.shuffle(todo);
  std::vector<std::vector<int>> line(4, std::vector<int>(4, -1));
  size_t next = 0;
  for (int q = 0; q < 5; ++q) {
    for (int k = 0; k < 2 && next < todo.size(); ++k, ++next) {
      auto [a, t] = todo[next];
      std::string place = "the " + kTimeLocs[sched[a][t]];
      std::string verb = pick(r, kMove);
      if (r.bernoulli(0.5))
        line[a][t] = b.say(cap(times[t]) + " " + kTimeActors[a] + " " + verb + " " + place + ".");
      else
        line[a][t] = b.say(kTimeActors[a] + " " + verb + " " + place + " " + times[t] + ".");
    }
    std::vector<int> cand;
    for (int a = 0; a < 4; ++a) {
      int n = 0;
      for (int t = 0; t < 4; ++t) n += line[a][t] >= 0;
      if (n >= 2) cand.push_back(a);
    }
    if (cand.empty()) continue;
    int a = cand[r.below(cand.size())];
    std::vector<int> stated;
    for (int t = 0; t < 4; ++t)
      if (line[a][t] >= 0) stated.push_back(t);
    int j = 1 + pick(r, static_cast<int>(stated.size()) - 1);
    int t = stated[j], p = stated[j - 1];
    b.ask("Where was " + kTimeActors[a] + " before the " + kTimeLocs[sched[a][t]] + "? ", kTimeLocs[sched[a][p]],
          {line[a][t], line[a][p]});
  }
  return b.lines;
}

// qa15: deduction ("Mice are afraid of wolves. Gertrude is a mouse.").
Story deduction(Rng& r) {
  static const Strs sing = {"mouse", "sheep", "wolf", "cat"};
  static const Strs plur = {"Mice", "Sheep", "Wolves", "Cats"};
  static const Strs names = {"Gertrude", "Winona", "Jessica", "Emily"};
  Builder b;
  std::vector<int> fears(4);
  for (int s = 0; s < 4; ++s) {
    fears[s] = pick(r, 3);
    if (fears[s] >= s) ++fears[s];
  }
  auto species = r.sample_indices(4, 4);
  std::vector<std::pair<int, int>> facts;  // (kind 0: species fear, 1: name is a) , index
  for (int i = 0; i < 4; ++i) facts.push_back({0, i}), facts.push_back({1, i});
  r.shuffle(facts);
  std::vector<int> fear_line(4), name_line(4);
  for (auto [kind, i] : facts) {
    if (kind == 0) {
      std::string p = plur[fears[i]];
      fear_line[i] = b.say(plur[i] + " are afraid of " + lower(p) + ".");
    } else {
      name_line[i] = b.say(names[i] + " is a " + sing[species[i]] + ".");
    }
  }
  auto order = r.sample_indices(4, 4);
  for (size_t k : order) {
    int s = static_cast<int>(species[k]);
    b.ask("What is " + lower(names[k]) + " afraid of? ", sing[fears[s]], {name_line[k], fear_line[s]});
  }
  return b.lines;
}

// qa16: induction ("Lily is a swan. Lily is white. Greg is a swan. What color is Greg?").
Story induction(Rng& r) {
  static const Strs animals = {"swan", "lion", "frog", "rhino"};
  static const Strs colors = {"gray", "white", "yellow", "green"};
  static const Strs names = {"Lily", "Bernhard", "Greg", "Julius", "Brian"};
  Builder b;
  auto color = r.sample_indices(4, 4);
  std::vector<int> sp(5);
  for (auto& s : sp) s = pick(r, 4);
  // The questioned actor shares a species with at least one other.
  int qa = pick(r, 5);
  int mate = pick(r, 4);
  if (mate >= qa) ++mate;
  sp[qa] = sp[mate];
  std::vector<std::pair<int, int>> facts;  // (kind 0: is a, 1: color), name
  for (int n = 0; n < 5; ++n) {
    facts.push_back({0, n});
    if (n != qa) facts.push_back({1, n});
  }
  r.shuffle(facts);
  std::vector<int> is_line(5), col_line(5);
  for (auto [kind, n] : facts) {
    if (kind == 0)
      is_line[n] = b.say(names[n] + " is a " + animals[sp[n]] + ".");
    else
      col_line[n] = b.say(names[n] + " is " + colors[color[sp[n]]] + ".");
  }
  b.ask("What color is " + names[qa] + "? ", colors[color[sp[qa]]], {is_line[qa], is_line[mate], col_line[mate]});
  return b.lines;
}

// qa17: positional reasoning on a 5x5 grid.
Story positional(Rng& r) {
  static const Strs shapes = {"square", "rectangle", "triangle", "sphere"};
  static const Strs colors = {"red", "blue", "pink", "yellow"};
  Builder b;
  // Three distinct objects; a plain shape never shares its shape with another object.
  std::vector<std::pair<int, int>> objs;  // (color or -1, shape)
  while (objs.size() < 3) {
    int s = pick(r, 4), c = r.bernoulli(0.5) ? -1 : pick(r, 4);
    bool ok = true;
    for (auto& o : objs)
      if (o.second == s && (c < 0 || o.first < 0 || o.first == c)) ok = false;
    if (ok) objs.push_back({c, s});
  }
  auto name = [&](int i) {
    return objs[i].first < 0 ? shapes[objs[i].second] : colors[objs[i].first] + " " + shapes[objs[i].second];
  };
  // Random walk of two steps without returning; directions: 0 up, 1 down, 2 left, 3 right.
  static const int dx[4] = {0, 0, -1, 1}, dy[4] = {1, -1, 0, 0};
  int x[3], y[3];
  for (;;) {
    x[0] = pick(r, 5), y[0] = pick(r, 5);
    int d1 = pick(r, 4), d2 = pick(r, 4);
    x[1] = x[0] + dx[d1], y[1] = y[0] + dy[d1];
    x[2] = x[1] + dx[d2], y[2] = y[1] + dy[d2];
    bool in = true;
    for (int i = 0; i < 3; ++i) in = in && x[i] >= 0 && x[i] < 5 && y[i] >= 0 && y[i] < 5;
    if (in && !(x[2] == x[0] && y[2] == y[0])) break;
  }
  static const Strs rel = {"above", "below", "to the left of", "to the right of"};
  auto holds = [&](int i, int k, int j) {  // is object i <rel k> object j
    switch (k) {
      case 0: return y[i] > y[j];
      case 1: return y[i] < y[j];
      case 2: return x[i] < x[j];
      default: return x[i] > x[j];
    }
  };
  auto state_fact = [&](int i, int j) {  // adjacent pair, stated from either side
    if (r.bernoulli(0.5)) std::swap(i, j);
    for (int k = 0; k < 4; ++k)
      if (holds(i, k, j)) return b.say("The " + name(i) + " is " + rel[k] + " the " + name(j) + ".");
    return -1;
  };
  state_fact(0, 1);
  state_fact(1, 2);
  if (r.bernoulli(0.5)) std::swap(b.lines[0], b.lines[1]);  // order of the two facts
  const std::vector<int> lines = {0, 1};
  for (int q = 0; q < 8; ++q) {
    int i = 0, j = 2;
    if (r.bernoulli(0.5)) std::swap(i, j);
    bool want = r.bernoulli(0.5);
    std::vector<int> ks;
    for (int k = 0; k < 4; ++k)
      if (holds(i, k, j) == want) ks.push_back(k);
    int k = ks[r.below(ks.size())];
    b.ask("Is the " + name(i) + " " + rel[k] + " the " + name(j) + "? ", want ? "yes" : "no", lines);
  }
  return b.lines;
}

// qa18: size reasoning; questions about pairs two "bigger than" steps apart.
Story size_reasoning(Rng& r) {
  static const Strs objs = {"suitcase", "container", "box", "chest", "box of chocolates", "chocolate"};
  Builder b;
  std::vector<double> size = {1 + r.uniform(), 1 + r.uniform(), 1 + r.uniform(), 1 + r.uniform(), 1.0, 0.5};
  std::vector<int> order = {0, 1, 2, 3, 4, 5};
  std::sort(order.begin(), order.end(), [&](int a, int c) { return size[a] > size[c] || (size[a] == size[c] && a < c); });
  const int n = 6;
  // edges[i][j]: the reader was told order[i] > order[j] (i < j in size order).
  std::vector<std::vector<int>> edge(n, std::vector<int>(n, 0));
  auto paths2 = [&]() {
    // Pairs whose shortest known path has length exactly 2; returns (i, j, mid).
    std::vector<std::vector<int>> out;
    for (int i = 0; i < n; ++i) {
      std::vector<int> dist(n, 1 << 20), via(n, -1);
      dist[i] = 0;
      for (int u = i; u < n; ++u)
        if (dist[u] < (1 << 20))
          for (int v = u + 1; v < n; ++v)
            if (edge[u][v] && dist[u] + 1 < dist[v]) dist[v] = dist[u] + 1, via[v] = u;
      for (int j = i + 1; j < n; ++j)
        if (dist[j] == 2) out.push_back({i, j, via[j]});
    }
    return out;
  };
  std::vector<std::pair<int, int>> stated;
  auto chain = r.sample_indices(n, 3);
  std::sort(chain.begin(), chain.end());
  for (int k = 0; k < 2; ++k) {
    edge[chain[k]][chain[k + 1]] = 1;
    stated.push_back({static_cast<int>(chain[k]), static_cast<int>(chain[k + 1])});
  }
  int extra = static_cast<int>(r.range(2, 7));
  for (int e = 0; e < extra; ++e) {
    for (int tries = 0; tries < 100; ++tries) {
      auto p = r.sample_indices(n, 2);
      int i = static_cast<int>(std::min(p[0], p[1])), j = static_cast<int>(std::max(p[0], p[1]));
      if (edge[i][j]) continue;
      edge[i][j] = 1;
      if (paths2().empty()) {
        edge[i][j] = 0;
        continue;
      }
      stated.push_back({i, j});
      break;
    }
  }
  r.shuffle(stated);
  std::map<std::pair<int, int>, int> line_of;
  for (auto [i, j] : stated) {
    const std::string &big = objs[order[i]], &small = objs[order[j]];
    line_of[{i, j}] = r.bernoulli(0.5) ? b.say("The " + big + " is bigger than the " + small + ".")
                                       : b.say("The " + small + " fits inside the " + big + ".");
  }
  auto qs = paths2();
  r.shuffle(qs);
  if (qs.size() > 5) qs.resize(5);
  for (auto& q : qs) {
    const std::string &big = objs[order[q[0]]], &small = objs[order[q[1]]];
    std::vector<int> sup = {line_of[{q[0], q[2]}], line_of[{q[2], q[1]}]};
    switch (pick(r, 4)) {
      case 0: b.ask("Is the " + big + " bigger than the " + small + "? ", "yes", sup); break;
      case 1: b.ask("Is the " + small + " bigger than the " + big + "? ", "no", sup); break;
      case 2: b.ask("Does the " + small + " fit in the " + big + "? ", "yes", sup); break;
      default: b.ask("Does the " + big + " fit in the " + small + "? ", "no", sup); break;
    }
  }
  return b.lines;
}

// qa19: path finding. Three rooms on a walk of two steps plus two decoys; the stated adjacencies form a tree,
// so the path is unique.
Story path_finding(Rng& r) {
  static const Strs dname = {"north", "south", "east", "west"};
  static const char* dletter[4] = {"n", "s", "e", "w"};
  static const int dx[4] = {0, 0, 1, -1}, dy[4] = {1, -1, 0, 0};
  static const int opposite[4] = {1, 0, 3, 2};
  Builder b;
  auto rooms = r.sample_indices(6, 5);
  std::map<std::pair<int, int>, int> cell;  // grid cell -> room slot
  std::vector<std::pair<int, int>> pos(5);
  struct Edge { int from, to, dir; };  // room `to` is `dir` of room `from`
  std::vector<Edge> edges;
  pos[0] = {0, 0};
  cell[pos[0]] = 0;
  int d1 = pick(r, 4), d2 = pick(r, 3);
  if (d2 >= opposite[d1]) ++d2;  // no going straight back
  int dirs[2] = {d1, d2};
  for (int k = 0; k < 2; ++k) {
    pos[k + 1] = {pos[k].first + dx[dirs[k]], pos[k].second + dy[dirs[k]]};
    cell[pos[k + 1]] = k + 1;
    edges.push_back({k, k + 1, dirs[k]});
  }
  for (int k = 3; k < 5; ++k) {  // decoys hang off a free cell next to an existing room
    for (;;) {
      int from = pick(r, k), d = pick(r, 4);
      std::pair<int, int> c = {pos[from].first + dx[d], pos[from].second + dy[d]};
      if (cell.count(c)) continue;
      pos[k] = c;
      cell[c] = k;
      edges.push_back({from, k, d});
      break;
    }
  }
  std::vector<int> order = {0, 1, 2, 3};
  r.shuffle(order);
  std::vector<int> line(4);
  for (int e : order) {
    const Edge& ed = edges[e];
    const std::string &from = kBasicLocs[rooms[ed.from]], &to = kBasicLocs[rooms[ed.to]];
    if (r.bernoulli(0.5))
      line[e] = b.say("The " + to + " is " + dname[ed.dir] + " of the " + from + ".");
    else
      line[e] = b.say("The " + from + " is " + dname[opposite[ed.dir]] + " of the " + to + ".");
  }
  b.ask("How do you go from the " + kBasicLocs[rooms[0]] + " to the " + kBasicLocs[rooms[2]] + "? ",
        std::string(dletter[d1]) + "," + dletter[d2], {line[0], line[1]});
  return b.lines;
}

// qa20: agents' motivations.
Story motivations(Rng& r) {
  static const Strs names = {"Jason", "Antoine", "Sumit", "Yann"};
  static const Strs motive = {"hungry", "thirsty", "bored", "tired"};
  static const Strs dest = {"kitchen", "kitchen", "garden", "bedroom"};
  static const Strs thing = {"apple", "milk", "football", "pajamas"};
  Builder b;
  std::vector<int> m(4), step(4, 0), mline(4), gline(4);
  for (auto& x : m) x = pick(r, 4);
  std::vector<int> seq;  // interleaving of the 3 steps of every actor
  for (int a = 0; a < 4; ++a) seq.insert(seq.end(), {a, a, a});
  r.shuffle(seq);
  for (int a : seq) {
    const std::string& X = names[a];
    std::string x = lower(X);
    bool ask = r.bernoulli(0.5);
    int s = step[a]++;
    if (s == 0) {
      mline[a] = b.say(X + " is " + motive[m[a]] + ".");
      if (ask) b.ask("Where will " + x + " go? ", dest[m[a]], {mline[a]});
    } else if (s == 1) {
      gline[a] = b.say(X + " " + pick(r, kMove) + " the " + dest[m[a]] + ".");
      if (ask) b.ask("Why did " + x + " go to the " + dest[m[a]] + "? ", motive[m[a]], {mline[a], gline[a]});
    } else {
      int l = b.say(X + " " + pick(r, kGet) + " the " + thing[m[a]] + " there.");
      if (ask) b.ask("Why did " + x + " get the " + thing[m[a]] + "? ", motive[m[a]], {mline[a], l});
    }
  }
  if (b.num_questions() == 0) {  // every story asks at least once: about the last actor's motive
    int a = seq.back();
    b.ask("Why did " + lower(names[a]) + " go to the " + dest[m[a]] + "? ", motive[m[a]], {mline[a], gline[a]});
  }
  return b.lines;
}

}  // namespace

const std::vector<std::string>& task_names() {
  static const Strs v = babilong_catalog().names();
  return v;
}

bool is_task(const std::string& task) {
  auto& v = task_names();
  return std::find(v.begin(), v.end(), task) != v.end();
}

static const TaskInfo& info(const std::string& task) {
  if (!is_task(task))
    throw Error("unknown bAbI task '" + task + "' (known: " + task_names().front() + " ... " + task_names().back() + ")");
  return babilong_catalog().at(task);
}

std::string task_title(const std::string& task) { return task + "_" + info(task).title; }

const std::vector<std::string>& task_labels(const std::string& task) {
  // One table for the simulator and the scorer: BABILong's TASK_LABELS live in the catalogue.
  info(task);
  return babilong_labels(task);
}

Story generate_story(const std::string& task, Rng& r) {
  // The story kinds the catalogue's `story` parameter names.
  static const std::map<std::string, Story (*)(Rng&)> kinds = {
      {"actor_location", [](Rng& g) { return where_is_actor(g, false); }},
      {"actor_location_yes_no", [](Rng& g) { return where_is_actor(g, true); }},
      {"object_location", [](Rng& g) { return where_object(g, false); }},
      {"object_location_before", [](Rng& g) { return where_object(g, true); }},
      {"compass_relation", [](Rng& g) { return is_dir(g); }},
      {"giving", [](Rng& g) { return who_what_gave(g); }},
      {"counting", [](Rng& g) { return counting(g, false); }},
      {"carried_list", [](Rng& g) { return counting(g, true); }},
      {"negation", [](Rng& g) { return negation(g); }},
      {"indefinite", [](Rng& g) { return indefinite(g); }},
      {"coreference", [](Rng& g) { return basic_coreference(g); }},
      {"conjunction", [](Rng& g) { return conjunction(g, false); }},
      {"compound_coreference", [](Rng& g) { return conjunction(g, true); }},
      {"time", [](Rng& g) { return time_reasoning(g); }},
      {"deduction", [](Rng& g) { return deduction(g); }},
      {"induction", [](Rng& g) { return induction(g); }},
      {"positions", [](Rng& g) { return positional(g); }},
      {"sizes", [](Rng& g) { return size_reasoning(g); }},
      {"path", [](Rng& g) { return path_finding(g); }},
      {"motivations", [](Rng& g) { return motivations(g); }},
  };
  const std::string kind = info(task).params.at("story").get<std::string>();
  auto it = kinds.find(kind);
  if (it == kinds.end()) throw Error("babilong catalogue: task " + task + " names the unknown story kind '" + kind + "'");
  return it->second(r);
}

std::vector<Instance> instances(const Story& story) {
  std::vector<Instance> out;
  std::vector<std::string> facts;
  std::vector<int> fact_of_line(story.size(), -1);
  int qn = 0;
  for (size_t i = 0; i < story.size(); ++i) {
    const Line& l = story[i];
    if (!l.is_question) {
      fact_of_line[i] = static_cast<int>(facts.size());
      facts.push_back(l.text);
      continue;
    }
    Instance in;
    in.facts = facts;
    in.question = l.text;
    in.answer = l.answer;
    in.question_number = qn++;
    for (int s : l.support) {
      if (s < 0 || s >= static_cast<int>(i) || fact_of_line[s] < 0)
        throw Error("bAbI story: question '" + l.text + "' has an invalid supporting line");
      in.support.push_back(fact_of_line[s]);
    }
    std::sort(in.support.begin(), in.support.end());
    out.push_back(std::move(in));
  }
  return out;
}

}  // namespace lctx::babi
