-- Each competence-development activity with what the programme's postings on it cost.
with costs as (
    select
        activity_id,
        sum(amount_dkk) as cost_dkk
    from {{ ref('fct_programme_postings') }}
    where activity_id is not null
    group by activity_id
)

select
    activities.activity_id,
    activities.activity_type,
    activities.title,
    activities.held_on,
    activities.target_group,
    activities.district,
    activities.participants,
    cast(coalesce(costs.cost_dkk, 0) as decimal(18, 2)) as cost_dkk,
    cast(coalesce(costs.cost_dkk, 0) / nullif(activities.participants, 0) as decimal(18, 2))
        as cost_per_participant
from {{ ref('stg_courses__activities') }} as activities
left join costs
    on activities.activity_id = costs.activity_id
