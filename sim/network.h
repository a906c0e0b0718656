#pragma once

#include <glib.h>

#include "engine.h"
#include "msim-time.h"

G_BEGIN_DECLS

/*
 * MsimNetwork: the flow-level network model.
 *
 * A flow is (route, bytes, start).  It first spends its route's latency
 * using no bandwidth ("first byte" time = start + latency), then moves its
 * bytes at its current rate.  Rates are max-min fair (progressive filling,
 * all flows weighted equally) over the directed links' capacities: these
 * are the semantics of SimGrid's CM02 model with TCP-gamma 0, latency and
 * bandwidth factors 1, weight-S 0 and no cross-traffic, on routes of equal
 * latency.
 *
 * The model registers itself with an MsimEngine and never moves the clock:
 * it reports its next event (earliest first byte or completion) and settles
 * when the engine advances.  All changes made at one simulated time (flows
 * starting, flows completing, callbacks starting more flows) are batched
 * into one re-solve, which works on links (flows bottlenecked on one link
 * share its rate) and restarts above the level of the removed flows; see
 * network.c for the algorithm and why it is exact.
 *
 * A second, analytical mode (alpha-beta) gives each flow its route's
 * bottleneck capacity with no sharing at all: completion = start + latency
 * + bytes / min capacity.  It is exact for flows that never share a link
 * and optimistic otherwise (it ignores contention), which makes it a lower
 * bound on completion times that is cheap enough for large sweeps.
 */

typedef struct _MsimNetwork MsimNetwork;

typedef enum
{
  MSIM_NETWORK_MAXMIN,
  MSIM_NETWORK_ANALYTICAL,
} MsimNetworkModel;

/* A flow's identity: index and generation (stale ids are detected). */
typedef guint64 MsimFlowId;

typedef struct
{
  MsimFlowId id;
  MsimTime start;      /* when the flow was started */
  MsimTime first_byte; /* start + route latency */
  MsimTime end;        /* when its last byte arrived */
  double bytes;
} MsimFlowInfo;

/* Called once per flow, at its completion time, from inside the engine's
 * settle phase.  It may start new flows (at or after the current time). */
typedef void (*MsimFlowDoneFunc) (MsimNetwork *net, const MsimFlowInfo *info, gpointer data);

typedef struct
{
  guint64 flows_started;
  guint64 flows_completed;
  guint64 batches;        /* distinct times at which rates were re-solved */
  guint64 links_solved;   /* link saturations computed (progressive-filling steps) */
  guint64 flows_rated;    /* flows whose rate those steps set (as a group per link) */
  guint64 bn_changes;     /* flows that got a new bottleneck link (individual work) */
  guint64 links_scanned;  /* flows visited when a link adopts flows */
  guint64 fallbacks;      /* batches re-solved because a non-candidate link overflowed */
  double bytes_started;   /* bytes of all started flows */
  double bytes_delivered; /* bytes of all completed flows */
} MsimNetworkStats;

/* Creates a network of @n_links directed links with the given capacities in
 * bytes/s (each > 0 and finite) and attaches it to @engine as a model.
 * (transfer full); @engine must outlive the network. */
MsimNetwork *msim_network_new (MsimEngine *engine, guint n_links, const double *capacity_Bps,
                               MsimNetworkModel model);
void msim_network_free (MsimNetwork *net);

/* Starts a flow of @bytes (>= 0, finite) over the directed @links (copied)
 * at time @start (>= the engine's current time), reaching its first byte
 * after @latency.  A flow with no links (source = destination) or no bytes
 * completes at start + latency.  O(hops) plus, when it becomes active, its
 * share of the next re-solve. */
MsimFlowId msim_network_start_flow (MsimNetwork *net, MsimTime start, const guint32 *links,
                                    guint n_links, MsimTime latency, double bytes,
                                    MsimFlowDoneFunc done, gpointer data);

/* Current rate of an active flow in bytes/s (after any pending re-solve);
 * 0 for a flow in its latency phase; -1 for an unknown or finished id. */
double msim_network_flow_rate (MsimNetwork *net, MsimFlowId id);

/* Bytes a link has carried up to the engine's current time, and its current
 * load (sum of the rates of the flows crossing it). */
double msim_network_link_bytes (MsimNetwork *net, guint link);
double msim_network_link_load (MsimNetwork *net, guint link);
guint msim_network_n_links (const MsimNetwork *net);
MsimNetworkModel msim_network_model (const MsimNetwork *net);
guint msim_network_link_flows (const MsimNetwork *net, guint link); /* active flows on it */

/* When enabled, every re-solve verifies the invariants: no link above its
 * capacity, link loads equal to the sum of their flows' rates, every flow
 * with a bottleneck where it is maximal; and the rates equal a from-scratch
 * max-min solve (this makes each batch O(flows x links): for tests and
 * --check only).  A violation aborts with a message. */
void msim_network_set_check (MsimNetwork *net, gboolean check, gboolean compare_reference);

void msim_network_get_stats (const MsimNetwork *net, MsimNetworkStats *stats);

/*
 * From-scratch max-min fair rates by progressive filling, written for
 * clarity rather than speed (O(iterations x (flows + links))).  Flow f
 * crosses links[offsets[f] .. offsets[f+1]); rates_out receives its rate
 * (G_MAXDOUBLE for a flow with no links).  Used by tests and --check as the
 * reference the incremental solver must agree with.
 */
void msim_maxmin_reference (guint n_links, const double *capacity, guint n_flows,
                            const guint32 *offsets, const guint32 *links, double *rates_out);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (MsimNetwork, msim_network_free)

G_END_DECLS
