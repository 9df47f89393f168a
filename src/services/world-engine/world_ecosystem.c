/* world_ecosystem.c - the simulation step of a cell (DESIGN.md section 13, Ecosystem and Time):
 * flora and fauna as prey and predator (Lotka-Volterra with a logistic prey whose carrying
 * capacity rises with harmony and falls with corruption), stepped with explicit Euler and
 * clamped; then harmony's slow drift towards its resting level and corruption's erosion of it.
 * How corruption spreads and rifts open is the silence service's (it owns corruption); here
 * corruption is only read. */
#include "services/world-engine/world_rules.h"

#include <math.h>

/* A seed bank and wandering animals: without them a cell that lost all its flora or fauna could
 * never get any back, whatever its harmony later became. */
#define FLORA_SEEDING 0.02
#define FAUNA_IMMIGRATION 0.005

void world_eco_params_default(world_eco_params_t *p)
{
    /* Chosen so that the equilibrium is inside the range for every harmony: fauna settles where
     * flora is m / (a b) * 100 = 30, flora's capacity goes from 20 (harmony 0: fauna dies out)
     * to 100 (harmony 100: fauna near 90); the rates are slow enough (periods of minutes) for
     * Euler at 1 s to stay well inside its stable region. */
    p->dt_s = 1.0;
    p->flora_growth = 0.05;
    p->graze = 0.04;
    p->convert = 0.5;
    p->fauna_death = 0.006;
    p->capacity_min = 20;
    p->capacity_max = 100;
    p->corruption_blight = 0.6;
    /* half the way back to 50 in about 23 minutes */
    p->harmony_rest = 50;
    p->harmony_drift = 0.0005;
    /* corruption 100 takes 0.005 harmony a second: 18 an hour, slow beside what songs give */
    p->corruption_erosion = 0.005;
}

static double level(double v)
{
    if (!(v > 0))                   /* NaN too */
        return 0;
    return v > WORLD_LEVEL_MAX ? WORLD_LEVEL_MAX : v;
}

double world_flora_capacity(const world_eco_params_t *p, double harmony, double corruption)
{
    double h = level(harmony) / WORLD_LEVEL_MAX, c = level(corruption) / WORLD_LEVEL_MAX;
    double k = p->capacity_min + (p->capacity_max - p->capacity_min) * h;
    k *= 1.0 - p->corruption_blight * c;
    return k < 1.0 ? 1.0 : k;
}

void world_cell_step(world_cell_t *c, const world_eco_params_t *p, uint64_t now_ms)
{
    double h = level(c->harmony), cor = level(c->corruption);
    double f = level(c->flora), a = level(c->fauna);
    double dt = p->dt_s > 0 && p->dt_s < 60 ? p->dt_s : 1.0;
    double k = world_flora_capacity(p, h, cor);

    double eaten = p->graze * f * a / WORLD_LEVEL_MAX;
    double df = p->flora_growth * f * (1.0 - f / k) - eaten;
    if (f < k)
        df += FLORA_SEEDING;
    double da = p->convert * eaten - p->fauna_death * a;
    if (a < 1.0 && f > 1.0)
        da += FAUNA_IMMIGRATION;
    c->flora = level(f + dt * df);
    c->fauna = level(a + dt * da);

    double dh = -p->harmony_drift * (h - p->harmony_rest);
    if (!world_cell_warded(c, now_ms))
        dh -= p->corruption_erosion * cor / WORLD_LEVEL_MAX;
    c->harmony = level(h + dt * dh);
    c->corruption = cor;
}

void world_state_step(world_state_t *w, const world_eco_params_t *p, uint64_t now_ms)
{
    for (int r = 0; r < FV_WORLD_REGIONS; r++)
        for (int i = 0; i < WORLD_CELLS; i++)
            world_cell_step(&w->regions[r].cells[i], p, now_ms);
    w->sim_step++;
}
